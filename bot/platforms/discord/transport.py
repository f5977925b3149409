"""Discord destinations for the delivery layer: a channel reply, and an interaction's.

Every message is sent and edited with `AllowedMentions.none()`: a model that writes
`@everyone`, a role or a user mention pings nobody. discord.py's errors become the
delivery layer's at this boundary (`translate`).

A 429 normally never reaches us: discord.py sleeps the `retry_after` Discord gives and
retries the call itself (and the adapter's rate-limit trace pauses the destination's
call window meanwhile, see `bot.platforms.discord.client`). Only when discord.py gives
up (a wait over its limit, or a 429 without Cloudflare's `Via` header) does it raise,
and that becomes `RetryLater`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Coroutine
from typing import Any, TypeVar

import aiohttp
import discord

from bot.delivery import (
    DeliveryError,
    DeliveryLimits,
    DestinationGone,
    MessageGone,
    RetryLater,
    Transport,
)

# Discord: 2,000 characters a message; about 5 message calls per 5 s in a channel,
# counted when they arrive: the window is half a second longer, a margin for calls held
# up on their way (a busy event loop, the network). Typing shows for 10 s, so every 8 s
# keeps it on while a reply is written.
DISCORD_LIMITS = DeliveryLimits(
    max_length=2000,
    edit_interval_s=1.0,
    channel_messages=5,
    channel_window_s=5.5,
    typing_interval_s=8.0,
)
# Discord's global limit: 50 requests a second for the whole bot.
BOT_REQUESTS_PER_S = 50

_NO_MENTIONS = discord.AllowedMentions.none()

# Discord JSON error codes (https://discord.com/developers/docs/topics/opcodes-and-status-codes).
_UNKNOWN_CHANNEL = 10003
_UNKNOWN_MESSAGE = 10008
_UNKNOWN_WEBHOOK = 10015
_UNKNOWN_INTERACTION = 10062
_GONE_CODES = {_UNKNOWN_CHANNEL, _UNKNOWN_WEBHOOK, _UNKNOWN_INTERACTION}

T = TypeVar("T")


def _retry_after(exc: discord.HTTPException) -> float:
    headers = exc.response.headers
    raw = headers.get("X-RateLimit-Reset-After") or headers.get("Retry-After")
    try:
        return float(raw) if raw else 1.0
    except ValueError:
        return 1.0


async def translate(call: Coroutine[Any, Any, T], *, editing: bool = False) -> T:
    """Await a discord.py call, raising only `DeliveryError`s."""
    try:
        return await call
    except discord.RateLimited as exc:
        raise RetryLater(exc.retry_after) from exc
    except discord.NotFound as exc:
        if editing and exc.code not in _GONE_CODES:
            raise MessageGone(str(exc)) from exc
        raise DestinationGone(str(exc)) from exc
    except discord.Forbidden as exc:  # access to the channel lost, or the bot removed
        raise DestinationGone(str(exc)) from exc
    except discord.HTTPException as exc:
        if exc.status == 429:
            raise RetryLater(_retry_after(exc)) from exc
        if exc.status == 401:  # an interaction token that expired (15 minutes)
            raise DestinationGone(str(exc)) from exc
        if exc.status >= 500:  # still failing after discord.py's own retries: later
            raise RetryLater(2.0) from exc
        # Discord has no Markdown parse errors to fall back from (a 50035 "invalid form
        # body" means a payload the splitter should have prevented): nothing to retry
        # as plain text, so this is an ordinary delivery failure.
        raise DeliveryError(f"Discord refused the message: {exc}") from exc
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        # The connection dropped: the state is re-sent in full later, so nothing is lost.
        raise RetryLater(1.0) from exc


def discord_nonce(name: str) -> str:
    """`name` as a Discord message nonce (at most 25 characters): a number from its hash."""
    return str(int(hashlib.sha256(name.encode()).hexdigest()[:15], 16))


class ChannelReply(Transport[discord.Message]):
    """A reply in a channel, thread or DM; the first message answers the user's message."""

    limits = DISCORD_LIMITS

    def __init__(
        self, channel: discord.abc.Messageable, reply_to: discord.Message | None = None
    ) -> None:
        self._channel = channel
        # Still sent if the user's message is deleted meanwhile.
        self._reference = reply_to.to_reference(fail_if_not_exists=False) if reply_to else None

    async def send(self, text: str, *, plain: bool = False, nonce: str = "") -> discord.Message:
        reference, self._reference = self._reference, None
        # With a nonce Discord creates the message once: sent again by a process that took
        # the reply over (the first one died before recording it), it is the same message.
        once = {"nonce": discord_nonce(nonce)} if nonce else {}
        try:
            message: discord.Message = await translate(
                self._channel.send(  # type: ignore[call-overload]
                    text,
                    reference=reference,
                    mention_author=False,
                    allowed_mentions=_NO_MENTIONS,
                    **once,
                )
            )
        except RetryLater:
            self._reference = reference  # still the first message when retried
            raise
        # Sent before under this nonce (Discord trims the ends of what it is given):
        if message.content.strip() != text.strip():
            await self.edit(message, text)
        return message

    def message_ref(self, handle: discord.Message) -> str:
        return str(handle.id)

    def handle_of(self, ref: str) -> discord.Message:
        # A message sent by another process: edited through a partial message (its id is
        # all an edit needs); it stands in for the full message this process never had.
        partial = getattr(self._channel, "get_partial_message", None)
        if partial is None:
            raise NotImplementedError("this channel cannot edit a message by its id")
        self._reference = None  # the reply's first message exists: it answers the question
        return partial(int(ref))  # type: ignore[no-any-return]

    async def edit(self, handle: discord.Message, text: str, *, plain: bool = False) -> None:
        if getattr(handle, "content", None) == text:
            return
        edited = await translate(
            handle.edit(content=text, allowed_mentions=_NO_MENTIONS), editing=True
        )
        if isinstance(handle, discord.Message):
            handle.content = edited.content

    async def typing(self) -> None:
        await translate(self._typing_once())

    async def _typing_once(self) -> None:
        await self._channel.typing()


class InteractionReply(Transport[discord.Message]):
    """The answer to a deferred slash command: the first message replaces the "thinking"
    response, further pieces are follow-ups."""

    limits = DISCORD_LIMITS

    def __init__(self, interaction: discord.Interaction[Any]) -> None:
        self._interaction = interaction
        self._original_used = False

    async def send(self, text: str, *, plain: bool = False, nonce: str = "") -> discord.Message:
        if not self._original_used:
            message = await translate(
                self._interaction.edit_original_response(
                    content=text, allowed_mentions=_NO_MENTIONS
                )
            )
            self._original_used = True
            return message
        return await translate(
            self._interaction.followup.send(text, allowed_mentions=_NO_MENTIONS, wait=True)
        )

    async def edit(self, handle: discord.Message, text: str, *, plain: bool = False) -> None:
        if handle.content == text:
            return
        edited = await translate(
            handle.edit(content=text, allowed_mentions=_NO_MENTIONS),
            editing=True,
        )
        if edited is not None:
            handle.content = edited.content

    async def typing(self) -> None:
        """The deferred response already shows "thinking…" until the first message."""
