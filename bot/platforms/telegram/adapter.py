"""Telegram: python-telegram-bot's `Application` feeding the bot's core.

Each update is handled in its own task (PTB's concurrent updates), so a slow answer in
one chat never holds up another, and a failure while handling one update is logged and
forgotten. Replies stream through the shared delivery layer (`StreamingReply`) over a
`TelegramTransport`; this module only translates messages into neutral requests (a chat
message with what it replies to or quotes, a command parsed once by the registry, an
upload, a voice message) for `BotCore.handle`, and the registry into Telegram's command menus.
How updates arrive (polling under a lease, webhook lanes, PTB's own) is `receiving`'s.
"""

from __future__ import annotations

import asyncio
import json
import logging

from telegram import (
    BotCommand,
    BotCommandScopeAllChatAdministrators,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeDefault,
    Message,
    Update,
)
from telegram.error import InvalidToken, TelegramError
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from bot.commands.registry import REGISTRY, CommandRegistry
from bot.coordination import handle_once, pacers, track_reply
from bot.delivery.pacing import Clock, MonotonicClock
from bot.delivery.stream import StreamingReply
from bot.delivery.transport import DeliveryLimits
from bot.platforms.base import BotCore, InFlight, PlatformAdapter
from bot.platforms.telegram.config import TelegramSettings
from bot.platforms.telegram.documents import telegram_clip, telegram_upload
from bot.platforms.telegram.receiving import (
    TelegramApplication,
    TelegramStartError,
    UpdateReceiving,
)
from bot.platforms.telegram.roles import Roles
from bot.platforms.telegram.routing import (
    Request,
    is_private,
    quoted_in,
    read_request,
    thread_of,
)
from bot.platforms.telegram.transport import (
    BOT_MESSAGES_PER_S,
    GROUP_LIMITS,
    PRIVATE_LIMITS,
    TelegramTransport,
)
from bot.platforms.telegram.webhook import lane_of
from bot.reply_sink import send_text
from bot.requests import ChatMessage, CommandCall, UploadRequest, VoiceMessage
from bot.scope import Role, Scope

log = logging.getLogger(__name__)

PLATFORM = "telegram"
_DOCUMENT_HINT = "To add this file to the documents, send it with the caption /docs add."


class _HideToken(logging.Filter):
    """httpx logs every request's URL at INFO, and Bot API URLs carry the token."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self._token in message:
            record.msg, record.args = message.replace(self._token, "<token>"), None
        return True


def command_menu(registry: CommandRegistry, role: Role) -> list[BotCommand]:
    """Telegram's menu for people of `role`: one entry per top-level command (a group's
    subcommands are named in its description), from the registry."""
    menu = []
    for top, specs in registry.top_level().items():
        offered = [spec for spec in specs if spec.offered_on(PLATFORM) and spec.role <= role]
        if not offered:
            continue
        if len(offered) == 1 and offered[0].path == (top,):
            description = offered[0].summary
        else:
            description = " | ".join(spec.usage.removeprefix(f"/{top} ") for spec in offered)
        menu.append(BotCommand(top, description[:256]))
    return menu


def _window(limits: DeliveryLimits) -> tuple[int, float]:
    return limits.channel_messages, limits.channel_window_s


class TelegramAdapter(PlatformAdapter):
    name = PLATFORM

    def __init__(
        self, core: BotCore, settings: TelegramSettings, clock: Clock | None = None
    ) -> None:
        if settings.token is None:
            raise ValueError("BOT_TELEGRAM_TOKEN is not set: get a token from @BotFather")
        self._core = core
        self._settings = settings
        self._clock: Clock = clock or MonotonicClock()
        self._bot_id = settings.token.get_secret_value().split(":", 1)[0]
        # Telegram's budgets differ by chat kind; each chat is one destination of its pacer,
        # and every chat's calls count in the bot's overall budget (in Redis, shared by
        # every process of the bot, when there are several).
        paced = pacers(
            core.coordination,
            f"telegram:{self._bot_id}",
            self._clock,
            BOT_MESSAGES_PER_S,
            {"group": _window(GROUP_LIMITS), "private": _window(PRIVATE_LIMITS)},
        )
        self._group_pacer, self._private_pacer = paced["group"], paced["private"]
        self.application = self._build_application()
        bot = self.application.bot
        self._roles = Roles(bot, settings.operators, settings.admin_cache_s, self._clock)
        self.in_flight = InFlight()
        self._receiving = UpdateReceiving(
            self.application,
            settings,
            core.coordination,
            self._bot_id,
            self.in_flight,
            self._handle_update,
        )
        self._updates_source = self._receiving.updates_source

    @property
    def polling(self) -> bool:
        """This process is the one polling for updates now."""
        return self._receiving.polling

    @property
    def ready(self) -> asyncio.Event:
        """Set once updates are being received."""
        return self._receiving.ready

    def _build_application(self) -> TelegramApplication:
        assert self._settings.token is not None
        application = (
            ApplicationBuilder()
            .token(self._settings.token.get_secret_value())
            .base_url(self._settings.base_url)
            .base_file_url(self._settings.base_file_url)
            .concurrent_updates(True)
            .build()
        )
        application.add_handler(MessageHandler(filters.UpdateType.MESSAGE, self._on_message))
        application.add_error_handler(self._on_error)
        return application

    # -- lifecycle --------------------------------------------------------------------
    async def run(self, stopping: asyncio.Event) -> None:
        assert self._settings.token is not None
        hide = _HideToken(self._settings.token.get_secret_value())
        http_log = logging.getLogger("httpx")
        http_log.addFilter(hide)
        try:
            await self._run(stopping)
        finally:
            http_log.removeFilter(hide)

    async def _run(self, stopping: asyncio.Event) -> None:
        application = self.application
        try:
            await application.initialize()  # getMe: a bad token or an unreachable API
        except InvalidToken as exc:
            raise TelegramStartError(
                "Telegram refused the bot's token: check BOT_TELEGRAM_TOKEN (from @BotFather)"
            ) from exc
        except TelegramError as exc:
            raise TelegramStartError(f"could not reach the Telegram Bot API: {exc}") from exc
        async with application:
            await self._register_commands()
            await application.start()
            recovering = self._recover(stopping)
            try:
                await self._receiving.run(stopping)
            finally:
                if recovering is not None:
                    recovering.cancel()
                    await asyncio.gather(recovering, return_exceptions=True)
                await self._stop()

    def _recover(self, stopping: asyncio.Event) -> asyncio.Task[None] | None:
        """Every process, polling or not, handles the updates whose process died before
        answering them (Telegram will not send an update again once a poll confirmed it)."""
        coordination = self._core.coordination
        if coordination is None:
            return None
        return asyncio.create_task(
            coordination.recover(
                self._updates_source,
                self._serve_payload,
                self.in_flight.spawn,
                stopping,
                # Taken over in order per chat, as webhook updates are answered.
                lane_of=lambda payload: lane_of(json.loads(payload)) or "",
            )
        )

    async def _serve_payload(self, payload: str) -> None:
        update = Update.de_json(json.loads(payload), self.application.bot)
        if update is not None and update.message is not None:
            await self._serve(update.message)

    async def _stop(self) -> None:
        """Stop taking updates, let replies in flight deliver (bounded), stop handling."""
        application = self.application
        updater = application.updater
        if updater is not None and updater.running:
            try:
                await updater.stop()
            except Exception:  # a failed poll must not keep the replies from finishing
                log.exception("stopping Telegram updates failed")
        await self.in_flight.finish(self._settings.shutdown_grace_s)
        if application.running:
            await application.stop()

    async def _register_commands(self) -> None:
        bot = self.application.bot
        try:
            await bot.set_my_commands(
                command_menu(REGISTRY, Role.USER), scope=BotCommandScopeDefault()
            )
            admins = command_menu(REGISTRY, Role.ADMIN)
            await bot.set_my_commands(admins, scope=BotCommandScopeAllChatAdministrators())
            # In a private chat the person is the admin of their own conversation.
            await bot.set_my_commands(admins, scope=BotCommandScopeAllPrivateChats())
        except TelegramError as exc:  # the menu is a convenience: serve without it
            log.warning("could not register the command menu: %s", exc)

    # -- updates ----------------------------------------------------------------------
    async def _on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        log.warning("Telegram update failed: %r", context.error)

    async def _on_message(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._handle_update(update)

    async def _handle_update(self, update: Update, claimed: asyncio.Event | None = None) -> None:
        """Claim the update, then serve it if it is this process's to answer; `claimed` is
        set once the claim is decided (or failed)."""
        message = update.message
        if message is None:
            return
        with self.in_flight.current():
            payload = json.dumps(update.to_dict())
            source, update_id = self._updates_source, update.update_id
            try:
                async with handle_once(self._core.coordination, source, update_id, payload) as mine:
                    if claimed is not None:
                        claimed.set()
                    if mine:
                        await self._serve(message)
            except Exception:  # one bad update must not disturb the others
                log.exception("handling a Telegram message failed")
            finally:
                if claimed is not None:
                    claimed.set()

    async def _serve(self, message: Message) -> None:
        bot = self.application.bot
        request = read_request(message, bot.username, bot.id)
        if request is None:
            return
        # A reply another process left cut is finished, or marked and answered again.
        reply = await track_reply(self._reply(message))
        if reply is None:
            return
        limit = self._settings.download_limit_bytes
        if request.document is not None:
            scope = await self._scope(message, need_role=True)
            upload = telegram_upload(bot, request.document, limit)
            await self._core.handle(UploadRequest(scope, upload), reply)
        elif request.command == "/transcribe":
            scope = await self._scope(message, need_role=True)
            clip = {} if request.clip is None else {"clip": telegram_clip(bot, request.clip, limit)}
            await self._core.handle(CommandCall(scope, "transcribe", clip), reply)
        elif request.clip is not None and request.command is None:
            scope = await self._scope(message, need_role=False)
            voice = VoiceMessage(
                scope,
                telegram_clip(bot, request.clip, limit),
                quoted_in(message, bot.id),
                caption=request.text,
            )
            await self._core.handle(voice, reply)
        elif request.command in (None, "/ask"):
            await self._chat(message, request, reply)
        else:
            scope = await self._scope(message, need_role=True)
            await self._core.commands.handle_typed(scope, request.command, request.text, reply)

    async def _chat(self, message: Message, request: Request, reply: StreamingReply[int]) -> None:
        text = request.text
        quoted = quoted_in(message, self.application.bot.id)
        if not text and request.command and quoted is not None:
            # "/ask" sent as a reply asks about the message it replies to.
            text, quoted = quoted.text, None
        if not text and message.document is not None:
            await send_text(reply, _DOCUMENT_HINT)
            return
        if not text and request.command:
            await reply.fail("usage: /ask QUESTION")
            return
        scope = await self._scope(message, need_role=False)
        await self._core.handle(ChatMessage(scope, text, quoted), reply)

    def _reply(self, message: Message) -> StreamingReply[int]:
        private = is_private(message)
        transport = TelegramTransport(
            self.application.bot,
            message.chat.id,
            thread_of(message),
            private=private,
            reply_to=None if private else message.message_id,
        )
        pacer = self._private_pacer if private else self._group_pacer
        return StreamingReply(transport, pacer.window(str(message.chat.id)), self._clock)

    async def _scope(self, message: Message, *, need_role: bool) -> Scope:
        sender = message.from_user
        if message.sender_chat is not None:  # anonymous admin, or a channel posting
            user_id, user_name = message.sender_chat.id, message.sender_chat.title or ""
        elif sender is not None:
            user_id, user_name = sender.id, sender.full_name
        else:
            user_id, user_name = message.chat.id, ""
        role = await self._roles.role(message) if need_role else Role.USER
        thread = thread_of(message)
        return Scope(
            platform=PLATFORM,
            server_id=str(message.chat.id),
            channel_id=str(message.chat.id),
            user_id=str(user_id),
            thread_id=None if thread is None else str(thread),
            role=role,
            user_name=user_name,
            # Groups, supergroups and their topics are shared; a private chat is one's own.
            shared=not is_private(message),
        )
