"""discord.py pointed at a configurable Discord API, with the gateway asked of that API.

discord.py builds every REST URL from the class attribute `Route.BASE` and opens its
gateway at the fixed `DiscordWebSocket.DEFAULT_GATEWAY`; a plain `Client` never asks
`GET /gateway/bot`. Changing those class attributes would change every client in the
process, so instead one client is rebased through three supported seams:

* `RebasedHTTPClient` (a subclass of discord.py's `HTTPClient`, swapped into the client
  before anything runs) rewrites each REST route from `Route.BASE` to our base, and in
  `ws_connect` replaces the default gateway with the URL fetched by `fetch_gateway` from
  `GET /gateway/bot` on that base (a RESUME goes to READY's `resume_gateway_url`, which
  the server chose itself, so it is left alone);
* interaction responses and follow-ups go through discord.py's webhook adapter, which
  discord.py reads from the context variable `discord.webhook.async_.async_context` on
  every call: `use_api_base` sets a rebased one for the calling task and every task it
  starts (the gateway loop, and from it each event and command);
* `rate_limit_trace` is an aiohttp trace (discord.py's `http_trace` option) that sees
  each 429 response. discord.py sleeps `retry_after` and retries a 429 itself, so the
  caller never sees it; the trace lets the delivery layer pause that destination too,
  so other replies there wait instead of running into the same limit.

The client is discord.py's `AutoShardedClient`, so one process can serve any range of
the bot's gateway shards (all of them when no range is set). Before each IDENTIFY it
waits for its turn (`IdentifyTurns`): Discord refuses sessions started faster than its
`max_concurrency` per 5 s, counted over every process of the bot.
"""

from __future__ import annotations

import contextvars
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import HTTPClient, Route
from discord.webhook.async_ import AsyncWebhookAdapter, async_context

log = logging.getLogger(__name__)


class _Rebase:
    """Rewrites discord.py's default API URLs to `api_base`."""

    def __init__(self, api_base: str) -> None:
        self.api_base = api_base.rstrip("/")

    def __call__(self, url: str) -> str:
        default = Route.BASE
        if self.api_base != default and url.startswith(default):
            return self.api_base + url[len(default) :]
        return url


class RebasedHTTPClient(HTTPClient):
    def __init__(self, client: discord.Client, api_base: str, trace: aiohttp.TraceConfig) -> None:
        super().__init__(client.loop, http_trace=trace)
        self.rebase = _Rebase(api_base)
        self.gateway: yarl.URL | None = None
        self.recommended_shards = 1
        self.max_concurrency = 1

    async def request(
        self, route: Route, *, files: Any = None, form: Any = None, **kwargs: Any
    ) -> Any:
        route.url = self.rebase(route.url)
        return await super().request(route, files=files, form=form, **kwargs)

    async def fetch_gateway(self) -> yarl.URL:
        """Ask the API where its gateway is; later connections go there."""
        shards, url, limits = await self.get_bot_gateway()
        self.gateway = yarl.URL(url)
        self.recommended_shards = shards
        self.max_concurrency = max(1, int(limits.get("max_concurrency", 1)))
        return self.gateway

    async def ws_connect(self, url: str, *, compress: int = 0) -> aiohttp.ClientWebSocketResponse:
        target = yarl.URL(url)
        if self.gateway is not None and target.host == DiscordWebSocket.DEFAULT_GATEWAY.host:
            # Keep discord.py's query (API version, encoding, compression).
            target = self.gateway.with_query(target.query)
        return await super().ws_connect(str(target), compress=compress)


class _RebasedWebhookAdapter(AsyncWebhookAdapter):
    def __init__(self, rebase: _Rebase) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._rebase = rebase

    async def request(self, route: Route, session: aiohttp.ClientSession, **kwargs: Any) -> Any:
        route.url = self._rebase(route.url)
        return await super().request(route, session, **kwargs)


def use_api_base(http: RebasedHTTPClient) -> contextvars.Token[AsyncWebhookAdapter]:
    """Send this task's (and its children's) interaction calls to `http`'s API base;
    `async_context.reset(token)` undoes it."""
    return async_context.set(_RebasedWebhookAdapter(http.rebase))


# (url path, retry_after_s, whether discord.py retries the call itself)
RateLimitSeen = Callable[[str, float, bool], Awaitable[None]]

# Retry-After when a 429 carries none of the headers (Discord always sends them).
_DEFAULT_RETRY_S = 1.0


def rate_limit_trace(seen: RateLimitSeen) -> aiohttp.TraceConfig:
    """An aiohttp trace calling `seen(url_path, retry_after_s, retried)` for every 429."""

    async def on_request_end(
        _session: aiohttp.ClientSession, _context: Any, params: aiohttp.TraceRequestEndParams
    ) -> None:
        response = params.response
        if response.status != 429:
            return
        raw = response.headers.get("X-RateLimit-Reset-After") or response.headers.get("Retry-After")
        try:
            retry_after = float(raw) if raw else _DEFAULT_RETRY_S
        except ValueError:
            retry_after = _DEFAULT_RETRY_S
        # discord.py retries only a 429 that came through Discord's proxy (with "Via");
        # without it, it raises and the delivery layer waits and retries instead.
        await seen(params.url.path, retry_after, bool(response.headers.get("Via")))

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(on_request_end)
    return trace


# Message calls only: typing has a bucket of its own.
_CHANNEL_PATH = re.compile(r"/channels/(\d+)/messages")
_WEBHOOK_PATH = re.compile(r"/(?:webhooks|interactions)/\d+/([^/?]+)")


def channel_in_path(path: str) -> str | None:
    found = _CHANNEL_PATH.search(path)
    return found.group(1) if found else None


def webhook_token_in_path(path: str) -> str | None:
    found = _WEBHOOK_PATH.search(path)
    return found.group(1) if found else None


MessageHandler = Callable[[discord.Message], Awaitable[None]]


class IdentifyTurns(Protocol):
    """Whose turn it is to start a gateway session (`storage.identify_gate.IdentifyGate`)."""

    async def wait_turn(self, shard_id: int) -> None: ...


class DiscordClient(discord.AutoShardedClient):
    """discord.py's sharded client talking to `api_base`, serving `shard_ids` of
    `shard_count` shards (None: all, as many as Discord recommends), handing each message
    to `on_message_cb`."""

    def __init__(
        self,
        *,
        api_base: str,
        intents: discord.Intents,
        on_message_cb: MessageHandler,
        rate_limited: RateLimitSeen,
        shard_ids: list[int] | None = None,
        shard_count: int | None = None,
    ) -> None:
        trace = rate_limit_trace(rate_limited)
        super().__init__(
            intents=intents,
            # None serves every shard (discord.py's option type leaves it out).
            shard_ids=shard_ids or None,  # type: ignore[arg-type]
            shard_count=shard_count,
            # Every message the bot sends pings nobody, whatever the model wrote; each
            # call also passes AllowedMentions.none() explicitly.
            allowed_mentions=discord.AllowedMentions.none(),
            http_trace=trace,
        )
        # Swapped in before login: nothing has used the original yet, and the
        # connection state is the only other holder of the reference.
        self.http: RebasedHTTPClient = RebasedHTTPClient(self, api_base, trace)
        self._connection.http = self.http
        self._on_message_cb = on_message_cb
        # Set once the API said how many sessions may start at once (`fetch_gateway`);
        # None: discord.py's own pacing, enough for one process.
        self.identify_turns: IdentifyTurns | None = None

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        turns = self.identify_turns
        if turns is None:
            await super().before_identify_hook(shard_id, initial=initial)
            return
        await turns.wait_turn(shard_id or 0)

    async def on_message(self, message: discord.Message) -> None:
        await self._on_message_cb(message)
