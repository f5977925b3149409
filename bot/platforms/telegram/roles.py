"""Who may change what: a Telegram sender's `Role`.

Operators are listed by user id in the settings. In a private chat the person is the
admin of their own scope. In a group, the chat's administrators (and its creator) are
admins; Telegram is asked with `getChatMember`, and the answer trusted for a while, since
every command of a busy group would otherwise cost a call. An anonymous admin's message
comes from the group itself (`sender_chat` is the chat): only admins can post that way.
"""

from __future__ import annotations

import logging

from telegram import Bot, Message
from telegram.constants import ChatMemberStatus
from telegram.error import TelegramError

from bot.delivery.pacing import Clock
from bot.platforms.telegram.routing import is_private
from bot.scope import Role

log = logging.getLogger(__name__)

_ADMIN_STATUSES = {ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.OWNER}
# Entries kept before expired ones are dropped (a bound on memory, not a policy).
_CACHE_SIZE = 10_000


class Roles:
    def __init__(self, bot: Bot, operators: list[int], cache_s: float, clock: Clock) -> None:
        self._bot = bot
        self._operators = frozenset(operators)
        self._cache_s = cache_s
        self._clock = clock
        self._admins: dict[tuple[int, int], tuple[float, bool]] = {}

    async def role(self, message: Message) -> Role:
        sender = message.from_user
        if sender is not None and sender.id in self._operators:
            return Role.OPERATOR
        if is_private(message):
            return Role.ADMIN
        if message.sender_chat is not None:
            # Posted as the group: an anonymous admin. Posted as a channel: not an admin.
            return Role.ADMIN if message.sender_chat.id == message.chat.id else Role.USER
        if sender is None:
            return Role.USER
        return Role.ADMIN if await self._is_admin(message.chat.id, sender.id) else Role.USER

    async def _is_admin(self, chat_id: int, user_id: int) -> bool:
        now = self._clock.now()
        cached = self._admins.get((chat_id, user_id))
        if cached is not None and now - cached[0] < self._cache_s:
            return cached[1]
        try:
            member = await self._bot.get_chat_member(chat_id, user_id)
        except TelegramError as exc:
            # Not knowing means not trusting: the person is treated as a member this time.
            log.warning("could not look up a chat member's status: %s", exc)
            return False
        admin = member.status in _ADMIN_STATUSES
        if len(self._admins) >= _CACHE_SIZE:
            self._admins = {
                key: value for key, value in self._admins.items() if now - value[0] < self._cache_s
            }
        self._admins[(chat_id, user_id)] = (now, admin)
        return admin
