"""Telegram's webhook for several bot processes behind one public URL.

Telegram posts each update to the URL; a proxy hands each post to any of the processes.
The process that gets it checks the secret token, records the update in Redis in its
chat's lane (`storage.ordered_intake`) and answers 200 at once, before any model work:
Telegram waits for the answer before it posts that chat's next update, and posts an
update again when it gets no 200. Which process then answers the update is decided by
the lanes (`bot.lane_workers`): one process at a time takes a chat's updates, in
update_id order.

Our own aiohttp server rather than PTB's `start_webhook`: PTB's server puts an update
on this process's in-memory queue and answers 200, so a process that dies right after
loses the update; here 200 means the update is in Redis. (aiohttp is already a
dependency; PTB's server is tornado behind private handler classes.)

A single process without Redis keeps PTB's webhook (see the adapter).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from aiohttp import web
from redis.exceptions import RedisError
from telegram import Bot, Update
from telegram.error import TelegramError

from bot.platforms.telegram.config import TelegramSettings
from storage.leases import milliseconds
from storage.ordered_intake import OrderedIntake

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
# The processes that start together skip registering while one of them does it.
_REGISTERING_S = 60


class WebhookReceiver:
    """The HTTP endpoint: checks, records, answers; `recorded(lane)` is told of each update
    recorded, so this process can start on it."""

    def __init__(
        self,
        settings: TelegramSettings,
        intake: OrderedIntake,
        recorded: Callable[[str], None],
    ) -> None:
        if settings.webhook_url is None:
            raise ValueError("BOT_TELEGRAM_WEBHOOK_URL is not set")
        self._settings = settings
        self._path = "/" + urlsplit(settings.webhook_url).path.lstrip("/")
        secret = settings.webhook_secret
        self._secret = secret.get_secret_value().encode() if secret is not None else None
        self._intake = intake
        self._recorded = recorded
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        if self._secret is None:
            log.warning(
                "BOT_TELEGRAM_WEBHOOK_SECRET is not set: anyone who finds the webhook URL can "
                "post updates to the bot; set it to a random string"
            )
        app = web.Application()
        app.router.add_post(self._path, self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._settings.webhook_listen, self._settings.webhook_port)
        await site.start()
        log.info(
            "Telegram webhook listening on %s:%d%s",
            self._settings.webhook_listen,
            self._settings.webhook_port,
            self._path,
        )

    async def stop(self) -> None:
        """Stop taking posts (Telegram posts them again, to a process still serving)."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _post(self, request: web.Request) -> web.Response:
        if self._secret is not None:
            given = request.headers.get(SECRET_HEADER, "").encode()
            if not hmac.compare_digest(given, self._secret):
                log.warning("refused a webhook post from %s: wrong secret token", request.remote)
                return web.Response(status=403)
        try:
            update = json.loads(await request.read())
        except ValueError:  # not JSON, or not UTF-8
            log.warning("refused a webhook post from %s: the body is not JSON", request.remote)
            return web.Response(status=400)
        update_id = update.get("update_id") if isinstance(update, dict) else None
        if not isinstance(update_id, int) or isinstance(update_id, bool):
            log.warning("refused a webhook post from %s: no update_id", request.remote)
            return web.Response(status=400)
        lane = lane_of(update)
        if lane is None:  # not a message (allowed_updates asks for messages only)
            return web.Response()
        try:
            await self._intake.record(lane, update_id, json.dumps(update))
        except (RedisError, OSError) as exc:
            # Not recorded: no 200, so Telegram posts the update again later.
            log.warning("could not record Telegram update %d: %s", update_id, exc)
            return web.Response(status=503)
        self._recorded(lane)
        return web.Response()


def lane_of(update: dict[str, object]) -> str | None:
    """A chat's updates are answered in order: the chat is the lane."""
    message = update.get(Update.MESSAGE)
    chat = message.get("chat") if isinstance(message, dict) else None
    chat_id = chat.get("id") if isinstance(chat, dict) else None
    return str(chat_id) if isinstance(chat_id, int) else None


def _text(value: bytes | str | None) -> str | None:
    return value.decode() if isinstance(value, bytes) else value


def _fingerprint(url: str, secret: str | None) -> str:
    """What identifies a registration, without keeping the secret itself."""
    return hashlib.sha256(f"{url}\0{secret or ''}".encode()).hexdigest()


async def register_webhook(
    bot: Bot,
    redis: aioredis.Redis,
    key: str,
    settings: TelegramSettings,
    *,
    registering_s: float = _REGISTERING_S,
) -> bool:
    """Point Telegram at the webhook URL, from one process: True if this one did.

    The processes starting together leave it to the first (a short-lived flag), and a
    process starting later (a rolling restart) calls setWebhook only when the URL or the
    secret changed, or the webhook was removed meanwhile (e.g. by long polling). No
    process removes the webhook when it stops: the others are still serving on it.
    """
    assert settings.webhook_url is not None
    url = settings.webhook_url
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    fingerprint = _fingerprint(url, secret)
    flag, ttl_ms = f"{key}:registering", milliseconds(registering_s)
    if not await redis.set(flag, fingerprint, nx=True, px=ttl_ms):
        if _text(await redis.get(flag)) == fingerprint:
            log.info("another process is registering the Telegram webhook")
            return False
        await redis.set(flag, fingerprint, px=ttl_ms)  # a new URL or secret: this one's
    try:
        info = await bot.get_webhook_info()
        if info.url == url and _text(await redis.get(key)) == fingerprint:
            log.info("the Telegram webhook is registered already")
            return False
        await bot.set_webhook(url, allowed_updates=[Update.MESSAGE], secret_token=secret)
    except TelegramError:
        await redis.delete(flag)  # let the next process try
        raise
    await redis.set(key, fingerprint)
    log.info("registered the Telegram webhook")
    return True
