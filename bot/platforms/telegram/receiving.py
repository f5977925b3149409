"""How a Telegram process receives the bot's updates, apart from what it does with them.

Three ways, chosen by the settings: long polling, where with Redis one process polls at a
time under a lease and the others stand by to take over; a webhook with Redis, where any
number of processes behind one URL record what is posted to them and the chats' ordered
lanes share the answering out; and, for a single process, PTB's own poller or webhook
server. They are apart from the adapter because none of this depends on what an update
says: the adapter only hands in how to handle one (`HandleUpdate`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import urlsplit

from telegram import Update
from telegram.error import Conflict, TelegramError
from telegram.ext import Application

from bot.coordination import Coordination
from bot.lane_workers import LaneWorkers
from bot.platforms.base import InFlight
from bot.platforms.telegram.config import TelegramSettings
from bot.platforms.telegram.routing import read_request
from bot.platforms.telegram.webhook import WebhookReceiver, register_webhook
from bot.turn_queue import tell_when_in_line
from storage.ordered_intake import OrderedIntake

log = logging.getLogger(__name__)

# PTB's Application is generic in its bot, context and data types; the defaults are used.
TelegramApplication = Application[Any, Any, Any, Any, Any, Any]

# Claims and serves one update; sets the event (when given) once the claim is decided.
HandleUpdate = Callable[[Update, asyncio.Event | None], Coroutine[Any, Any, None]]


class TelegramStartError(RuntimeError):
    """Telegram could not be reached or refused the bot at start-up."""


def _poll_failed(exc: TelegramError) -> None:
    if isinstance(exc, Conflict):  # another process polls with this token
        log.warning("Telegram: another process is polling this bot's updates: %s", exc)
    else:
        log.warning("polling Telegram failed (retrying): %s", exc)


class UpdateReceiving:
    """Receives updates the way the settings say until stopped; `polling` tells whether
    this process is the one polling now, and `ready` is set once updates are received."""

    def __init__(
        self,
        application: TelegramApplication,
        settings: TelegramSettings,
        coordination: Coordination | None,
        bot_id: str,
        in_flight: InFlight,
        handle_update: HandleUpdate,
    ) -> None:
        self._application = application
        self._settings = settings
        self._coordination = coordination
        self._bot_id = bot_id
        self._in_flight = in_flight
        self._handle_update = handle_update
        self.updates_source = f"telegram:{bot_id}:update"
        self.polling = False
        self.ready = asyncio.Event()

    async def run(self, stopping: asyncio.Event) -> None:
        coordination = self._coordination
        if self._settings.webhook_url is not None and coordination is not None:
            await self._serve_webhook(coordination, stopping)
            return
        if self._settings.webhook_url is not None or coordination is None:
            await self._start_receiving()
            self.polling = self._settings.webhook_url is None
            self.ready.set()
            log.info("serving Telegram as @%s", self._application.bot.username)
            await stopping.wait()
            return
        # Long polling with several processes: one polls at a time (Telegram ends a second
        # poller's request with 409 Conflict); the others stand by and take over when its
        # lease runs out. Every process delivers the replies of the updates it handles.
        role = coordination.role(f"telegram:{self._bot_id}:polling")
        self.ready.set()
        while not stopping.is_set():
            async with role.held(stopping) as lost:
                if lost.is_set():
                    break
                await self._start_receiving()
                self.polling = True
                log.info("polling Telegram as @%s", self._application.bot.username)
                await _first_set(stopping, lost)
                self.polling = False
                updater = self._application.updater
                if updater is not None and updater.running:
                    await updater.stop()

    async def _serve_webhook(self, coordination: Coordination, stopping: asyncio.Event) -> None:
        """Webhook with Redis: any number of processes behind one URL, each recording the
        updates posted to it; the chats' lanes share the answering out (`webhook`)."""
        intake = OrderedIntake(
            coordination.redis, self.updates_source, lease_s=coordination.claims.lease_s
        )
        lanes = LaneWorkers(intake, self._take_update, stopping)
        receiver = WebhookReceiver(self._settings, intake, lanes.wake)
        try:
            await register_webhook(
                self._application.bot,
                coordination.redis,
                f"telegram:{self._bot_id}:webhook",
                self._settings,
            )
        except TelegramError as exc:
            raise TelegramStartError(f"Telegram refused the webhook URL: {exc}") from exc
        await receiver.start()
        self.ready.set()
        log.info("serving Telegram as @%s by webhook", self._application.bot.username)
        try:
            await lanes.run()
        finally:
            await receiver.stop()
            await lanes.close(self._settings.shutdown_grace_s)

    async def _take_update(self, payload: str) -> None:
        """Handle a recorded update; returning lets its chat's next update go. A question
        (and what may become one) lets it go once it has its place in the conversation's
        queue (so the next is queued behind it) or is over; a command such as /cancel
        once it is claimed, to run beside the answer it may be about."""
        bot = self._application.bot
        update = Update.de_json(json.loads(payload), bot)
        if update is None or update.message is None:
            return
        request = read_request(update.message, bot.username, bot.id)
        go_on = asyncio.Event()
        if request is None or request.command in (None, "/ask"):
            self._in_flight.spawn(self._take_question(update, go_on))
        else:
            self._in_flight.spawn(self._handle_update(update, go_on))
        await go_on.wait()

    async def _take_question(self, update: Update, in_line: asyncio.Event) -> None:
        tell_when_in_line(in_line)
        try:
            await self._handle_update(update, None)
        finally:
            in_line.set()

    async def _start_receiving(self) -> None:
        updater = self._application.updater
        assert updater is not None
        settings = self._settings
        allowed = [Update.MESSAGE]
        if settings.webhook_url is None:
            await updater.start_polling(
                timeout=settings.poll_timeout_s,
                allowed_updates=allowed,
                error_callback=_poll_failed,
            )
            return
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        await updater.start_webhook(
            listen=settings.webhook_listen,
            port=settings.webhook_port,
            url_path=urlsplit(settings.webhook_url).path.lstrip("/"),
            webhook_url=settings.webhook_url,
            allowed_updates=allowed,
            secret_token=secret,
        )


async def _first_set(*events: asyncio.Event) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
