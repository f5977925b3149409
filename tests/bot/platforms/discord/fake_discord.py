"""A local fake Discord: REST under /api/v10 and a gateway websocket, on 127.0.0.1.

It serves what discord.py's `Client` needs to log in, sync slash commands, connect,
receive MESSAGE_CREATE / INTERACTION_CREATE events that a test injects, and reply: it
records every request, keeps the text of each message the bot sent, answers like Discord
(2,000 characters or a 400 with code 50035; 404 / 403 with Discord's error codes) and can
answer 429 with `retry_after` and the headers discord.py reads, for calls a test picks.
The world it serves (a server with channels, threads, roles, members) is `fake_world`.

The gateway knows shards as Discord does: each connection IDENTIFYs as shard
`[id, count]`, receives only the servers of its shard (`(guild_id >> 22) % count`) and
their events, DMs arrive on shard 0, and GET /gateway/bot recommends `shards` and says
`max_concurrency`. Every IDENTIFY is recorded with its shard and time (`identified`), so
a test can check how sessions of one bucket were spaced.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.bot.platforms.discord.fake_world import (
    ALICE,
    ALL_PERMISSIONS,
    BOT_ID,
    BOT_THREAD,
    GENERAL,
    GUILD_CHANNELS,
    GUILD_ID,
    OWNER_ID,
    SECOND_GENERAL,
    SECOND_GUILD_ID,
    TIMESTAMP,
    TOKEN,
    USER_THREAD,
    guild,
    member,
    permissions_of,
    second_guild,
    text_channel,
    thread,
    user,
)

MAX_LENGTH = 2000
MESSAGE_CONTENT_INTENT = 1 << 15


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # Exactly "application/json": discord.py parses nothing else as JSON (no charset).
    return web.Response(
        body=json.dumps(data).encode(),
        status=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def _error(status: int, code: int, message: str, **extra: Any) -> web.Response:
    return _json({"message": message, "code": code, **extra}, status=status)


@dataclass
class Call:
    """One REST request the bot made (path without the /api/v10 prefix)."""

    method: str
    path: str
    body: Any
    at: float
    status: int = 200


@dataclass
class _RateLimit:
    method: str
    pattern: re.Pattern[str]
    times: int
    every: int  # answer every n-th matching request (1: each, until `times` run out)
    retry_after: float
    via: bool
    seen: int = 0


@dataclass
class Interaction:
    token: str
    id: int
    channel: int
    callbacks: list[dict[str, Any]] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)  # the original response, then follow-ups


@dataclass
class Identified:
    """One IDENTIFY: which shard started a session, and when (time.monotonic)."""

    shard_id: int
    shard_count: int
    at: float


@dataclass
class GatewaySession:
    """One shard's session: its connection (None while disconnected) and the events it
    was sent, kept for a RESUME to replay."""

    shard_id: int
    shard_count: int
    session_id: str
    ws: web.WebSocketResponse | None
    sequence: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)


class FakeDiscord:
    def __init__(
        self,
        extra_channels: Iterable[int] = (),
        *,
        shards: int = 1,
        max_concurrency: int = 1,
        second_guild: bool = False,
    ) -> None:
        self.extra_channels = list(extra_channels)
        self.shards = shards  # what GET /gateway/bot recommends
        self.max_concurrency = max_concurrency
        self.guild_ids = [GUILD_ID, SECOND_GUILD_ID] if second_guild else [GUILD_ID]
        # Channel id -> its server; other channels are DMs.
        self.channel_guild = dict.fromkeys(GUILD_CHANNELS | set(self.extra_channels), GUILD_ID)
        if second_guild:
            self.channel_guild[SECOND_GENERAL] = SECOND_GUILD_ID
        self.updated_at: dict[int, float] = {}  # message id -> when its text last changed
        self.calls: list[Call] = []
        self.messages: dict[int, dict[str, Any]] = {}  # every message the bot posted, by id
        self.posted: dict[int, dict[str, Any]] = {}  # every message people posted, by id
        self.nonces: dict[tuple[str, str], int] = {}  # (channel, nonce) -> message id
        self.commands: dict[str, list[dict[str, Any]]] = {}  # "global" or a guild id
        self.identifies: list[dict[str, Any]] = []
        self.identified: list[Identified] = []
        # (shard id, event name, the object's id) of every event sent on a connection.
        self.delivered: list[tuple[int, str, str]] = []
        self.resumes: list[dict[str, Any]] = []
        self.interactions: dict[str, Interaction] = {}
        self.attachments: dict[str, bytes] = {}
        self.forbidden_channels: set[int] = set()
        self.deleted: set[int] = set()
        # Off: the privileged intent is not enabled in the "developer portal" (close 4014).
        self.message_content_enabled = True
        self._rate_limits: list[_RateLimit] = []
        self._ids = itertools.count(10**15)
        self._changed = asyncio.Condition()
        self.sessions: dict[int, GatewaySession] = {}  # by shard id
        self._runner: web.AppRunner | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware])
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{name}", self._attachment)
        api = "/api/v10"
        routes = [
            ("GET", "/gateway/bot", self._gateway_bot),
            ("GET", "/users/@me", self._me),
            ("GET", "/oauth2/applications/@me", self._application),
            ("PUT", "/applications/{app}/commands", self._sync),
            ("PUT", "/applications/{app}/guilds/{guild}/commands", self._sync),
            ("GET", "/channels/{channel}", self._channel),
            ("GET", "/channels/{channel}/messages/{message}", self._get_message),
            ("POST", "/channels/{channel}/messages", self._create_message),
            ("PATCH", "/channels/{channel}/messages/{message}", self._edit_message),
            ("POST", "/channels/{channel}/typing", self._typing),
            ("POST", "/interactions/{id}/{token}/callback", self._callback),
            ("PATCH", "/webhooks/{app}/{token}/messages/{message}", self._edit_webhook),
            ("POST", "/webhooks/{app}/{token}", self._followup),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, api + path, handler)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/v10"

    async def close(self) -> None:
        for session in list(self.sessions.values()):
            if session.ws is not None:
                await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # -- what a test controls ------------------------------------------------------------
    def rate_limit(
        self,
        method: str,
        path: str,
        *,
        times: int = 1,
        retry_after: float = 0.2,
        via: bool = True,
        every: int = 1,
    ) -> None:
        """Answer `times` of the requests matching `path` (a regex) with 429: the next
        ones, or every `every`-th. With `via` (as behind Cloudflare) discord.py waits and
        retries by itself; without, it raises."""
        self._rate_limits.append(
            _RateLimit(method, re.compile(path), times, every, retry_after=retry_after, via=via)
        )

    def shard_of(self, data: dict[str, Any]) -> int:
        """The shard an event goes to: its server's, or 0 for one without (a DM)."""
        guild_id = data.get("guild_id")
        if guild_id is None:
            return 0
        counts = {session.shard_count for session in self.sessions.values()}
        count = counts.pop() if len(counts) == 1 else self.shards
        return (int(guild_id) >> 22) % count

    async def dispatch(self, event: str, data: dict[str, Any], shard: int | None = None) -> None:
        """Send a gateway event to its shard's session (`shard_of`, unless given); kept for
        replay if the connection is down (as Discord does). An event for a shard nobody
        started a session for is lost."""
        session = self.sessions.get(self.shard_of(data) if shard is None else shard)
        if session is None:
            return
        session.sequence += 1
        payload = {"op": 0, "t": event, "s": session.sequence, "d": data}
        session.sent.append(payload)
        if session.ws is not None and not session.ws.closed:
            self.delivered.append((session.shard_id, event, str(data.get("id", ""))))
            await session.ws.send_json(payload)

    async def replay(self, event: str, event_id: int) -> None:
        """Send again an event already sent (as after a resume that replays it)."""
        sent = next(
            payload
            for session in self.sessions.values()
            for payload in session.sent
            if payload["t"] == event and payload["d"]["id"] == str(event_id)
        )
        await self.dispatch(event, sent["d"])

    async def drop_gateway(self) -> None:
        """Close every gateway connection as a network failure would (resumable)."""
        for session in list(self.sessions.values()):
            if session.ws is not None:
                await session.ws.close(code=4000, message=b"dropped")

    async def message(
        self,
        content: str,
        *,
        author: int = ALICE,
        channel: int = GENERAL,
        mentions_bot: bool = False,
        reply_to: int | None = None,
        dm: bool = False,
        attachments: list[dict[str, Any]] | None = None,
    ) -> int:
        """A person posts `content`; returns the message id."""
        message_id = next(self._ids)
        data: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": str(channel),
            "author": user(author),
            "content": content,
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [user(BOT_ID)] if mentions_bot else [],
            "mention_roles": [],
            "attachments": attachments or [],
            "embeds": [],
            "pinned": False,
            "type": 0,
            "flags": 0,
        }
        if not dm:
            data["guild_id"] = str(self.channel_guild.get(channel, GUILD_ID))
            data["member"] = member(author, with_user=False)
        if reply_to is not None:
            data["type"] = 19
            data["message_reference"] = {"message_id": str(reply_to), "channel_id": str(channel)}
            # A deleted message is sent as null.
            data["referenced_message"] = self.messages.get(reply_to) or self.posted.get(reply_to)
        self.posted[message_id] = data
        await self.dispatch("MESSAGE_CREATE", data)
        return message_id

    def delete_posted(self, message_id: int) -> None:
        """A person deletes their message (a later reply to it references nothing)."""
        self.posted.pop(message_id, None)

    async def slash(
        self,
        name: str,
        options: list[dict[str, Any]] | None = None,
        *,
        author: int = ALICE,
        channel: int = GENERAL,
        autocomplete: bool = False,
        resolved: dict[str, Any] | None = None,
        dm: bool = False,
    ) -> str:
        """A person runs a slash command (or types into an autocompleted option);
        returns the interaction's token."""
        interaction_id = next(self._ids)
        token = f"interaction-token-{interaction_id}"
        self.interactions[token] = Interaction(token=token, id=interaction_id, channel=channel)
        command: dict[str, Any] = {
            "id": str(self._command_id(name)),
            "name": name,
            "type": 1,
            "options": options or [],
        }
        if str(GUILD_ID) in self.commands and not dm:
            command["guild_id"] = str(GUILD_ID)
        if resolved:
            command["resolved"] = resolved
        kind = "thread" if channel in (BOT_THREAD, USER_THREAD) else "text"
        guild_id = self.channel_guild.get(channel, GUILD_ID)
        data: dict[str, Any] = {
            "id": str(interaction_id),
            "application_id": str(BOT_ID),
            "type": 4 if autocomplete else 2,
            "data": command,
            "guild_id": str(guild_id),
            "channel_id": str(channel),
            "channel": (
                thread(channel, ALICE) if kind == "thread" else text_channel(channel, "c", guild_id)
            ),
            "member": {**member(author), "permissions": str(permissions_of(author))},
            "token": token,
            "version": 1,
            "app_permissions": str(ALL_PERMISSIONS),
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": str(guild_id)},
            "context": 0,
            "attachment_size_limit": 25 * 1024 * 1024,
        }
        if dm:  # a DM with the bot: a user, no server
            for key in ("guild_id", "member", "guild_locale"):
                del data[key]
            data["user"] = user(author)
            data["channel"] = {"id": str(channel), "type": 1, "recipients": [user(author)]}
            data["authorizing_integration_owners"] = {"1": str(author)}
            data["context"] = 1
        await self.dispatch("INTERACTION_CREATE", data)
        return token

    def attachment(self, filename: str, data: bytes, content_type: str) -> dict[str, Any]:
        """An uploaded file, as Discord resolves it for a command option."""
        attachment_id = next(self._ids)
        self.attachments[filename] = data
        return {
            "id": str(attachment_id),
            "filename": filename,
            "size": len(data),
            "url": f"{self.url}/attachments/{filename}",
            "proxy_url": f"{self.url}/attachments/{filename}",
            "content_type": content_type,
        }

    # -- what a test reads -----------------------------------------------------------------
    def channel_messages(self, channel: int) -> list[dict[str, Any]]:
        return [m for m in self.messages.values() if m["channel_id"] == str(channel)]

    def texts(self, channel: int) -> list[str]:
        return [m["content"] for m in self.channel_messages(channel)]

    def interaction_texts(self, token: str) -> list[str]:
        found = self.interactions[token]
        return [self.messages[i]["content"] for i in found.messages if i in self.messages]

    def message_calls(self) -> list[Call]:
        """Every successful send or edit of a message (not typing, not callbacks)."""
        return [
            call
            for call in self.calls
            if call.status < 300
            and call.method in ("POST", "PATCH")
            and ("/messages" in call.path or re.fullmatch(r"/webhooks/\d+/[^/]+", call.path))
        ]

    async def wait_for(self, condition: Callable[[], bool], within_s: float = 20.0) -> None:
        """Wait until `condition()` holds (checked after every request the bot makes)."""
        async with asyncio.timeout(within_s):
            async with self._changed:
                await self._changed.wait_for(condition)

    # -- REST ---------------------------------------------------------------------------
    @web.middleware
    async def _middleware(
        self, request: web.Request, handler: Callable[[web.Request], Any]
    ) -> web.StreamResponse:
        path = request.path.removeprefix("/api/v10")
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode(errors="replace")
        call = Call(request.method, path, body, time.monotonic())
        if path.startswith(("/users", "/applications", "/oauth2", "/channels", "/gateway/")) and (
            request.headers.get("Authorization") != f"Bot {TOKEN}"
        ):
            response: web.StreamResponse = _error(401, 0, "401: Unauthorized")
        else:
            response = self._refusal(request.method, path, body) or await handler(request)
        call.status = response.status
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()
        return response

    def _refusal(self, method: str, path: str, body: Any) -> web.Response | None:
        for rule in self._rate_limits:
            if rule.times > 0 and rule.method == method and rule.pattern.search(path):
                rule.seen += 1
                if rule.seen % rule.every:
                    continue
                rule.times -= 1
                headers = {
                    "Retry-After": str(max(1, round(rule.retry_after))),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset-After": str(rule.retry_after),
                    "X-RateLimit-Bucket": "fake-bucket",
                    "X-RateLimit-Scope": "user",
                }
                if rule.via:
                    headers["Via"] = "1.1 google"
                payload = {
                    "message": "You are being rate limited.",
                    "retry_after": rule.retry_after,
                    "global": False,
                }
                return _json(payload, status=429, headers=headers)
        channel = re.match(r"/channels/(\d+)/", path)
        if channel and int(channel.group(1)) in self.forbidden_channels:
            return _error(403, 50001, "Missing Access")
        content = body.get("content") if isinstance(body, dict) else None
        if isinstance(content, str) and len(content) > MAX_LENGTH:
            return _error(
                400,
                50035,
                "Invalid Form Body",
                errors={
                    "content": {
                        "_errors": [
                            {
                                "code": "BASE_TYPE_MAX_LENGTH",
                                "message": f"Must be {MAX_LENGTH} or fewer in length.",
                            }
                        ]
                    }
                },
            )
        return None

    async def _gateway_bot(self, _request: web.Request) -> web.Response:
        return _json(
            {
                "url": self.url.replace("http", "ws", 1) + "/gateway",
                "shards": self.shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": self.max_concurrency,
                },
            }
        )

    async def _me(self, _request: web.Request) -> web.Response:
        return _json({**user(BOT_ID), "verified": True, "mfa_enabled": False})

    async def _application(self, _request: web.Request) -> web.Response:
        return _json(
            {
                "id": str(BOT_ID),
                "name": "commons",
                "description": "",
                "icon": None,
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": user(OWNER_ID),
                "verify_key": "0" * 64,
                "flags": 0,
                "interactions_endpoint_url": None,
            }
        )

    async def _sync(self, request: web.Request) -> web.Response:
        where = request.match_info.get("guild", "global")
        commands = [
            {**command, "id": str(self._command_id(command["name"])), "application_id": str(BOT_ID)}
            for command in await request.json()
        ]
        self.commands[where] = commands
        return _json(commands)

    def _command_id(self, name: str) -> int:
        return 7000 + sum(map(ord, name))

    def _new_message(
        self, channel: str, content: str, *, reference: Any = None, webhook: bool = False
    ) -> dict[str, Any]:
        message_id = next(self._ids)
        message: dict[str, Any] = {
            "id": str(message_id),
            "channel_id": channel,
            "author": user(BOT_ID),
            "content": content,
            "timestamp": TIMESTAMP,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [],
            "pinned": False,
            "type": 19 if reference else 0,
            "flags": 0,
        }
        if reference:
            message["message_reference"] = {
                key: str(value) if isinstance(value, int) and not isinstance(value, bool) else value
                for key, value in reference.items()
            }
        if webhook:
            message["webhook_id"] = str(BOT_ID)
        if int(channel) in self.channel_guild:
            message["guild_id"] = str(self.channel_guild[int(channel)])
        self.messages[message_id] = message
        self.updated_at[message_id] = time.monotonic()
        return message

    async def _channel(self, request: web.Request) -> web.Response:
        """A channel by id: a server's channel or thread, else a DM with whoever wrote in it."""
        channel_id = request.match_info["channel"]
        guild_id = self.channel_guild.get(int(channel_id))
        if guild_id is not None:
            found = self._guild_payload(guild_id)
            for channel in found["channels"] + found["threads"]:
                if channel["id"] == channel_id:
                    return _json({**channel, "guild_id": str(guild_id)})
        authors = [m["author"] for m in self.posted.values() if m["channel_id"] == channel_id]
        if guild_id is None and authors:
            return _json({"id": channel_id, "type": 1, "recipients": [authors[0]]})
        return _error(404, 10003, "Unknown Channel")

    async def _get_message(self, request: web.Request) -> web.Response:
        message_id = int(request.match_info["message"])
        found = self.posted.get(message_id) or self.messages.get(message_id)
        if found is None or message_id in self.deleted:
            return _error(404, 10008, "Unknown Message")
        return _json(found)

    async def _create_message(self, request: web.Request) -> web.Response:
        body = await request.json()
        channel = request.match_info["channel"]
        nonce = body.get("nonce") if body.get("enforce_nonce") else None
        if nonce is not None and (channel, nonce) in self.nonces:
            # Discord: a message sent again with the same nonce (within minutes) is the
            # one created the first time.
            return _json(self.messages[self.nonces[channel, nonce]])
        message = self._new_message(
            channel, body.get("content", ""), reference=body.get("message_reference")
        )
        if nonce is not None:
            self.nonces[channel, nonce] = int(message["id"])
        return _json(message)

    def _edit(self, message_id: int, body: dict[str, Any]) -> web.Response:
        if message_id in self.deleted or message_id not in self.messages:
            return _error(404, 10008, "Unknown Message")
        message = self.messages[message_id]
        if "content" in body:
            message["content"] = body["content"]
            self.updated_at[message_id] = time.monotonic()
        message["edited_timestamp"] = TIMESTAMP
        return _json(message)

    async def _edit_message(self, request: web.Request) -> web.Response:
        return self._edit(int(request.match_info["message"]), await request.json())

    async def _typing(self, _request: web.Request) -> web.Response:
        return web.Response(status=204)

    def _interaction(self, token: str) -> Interaction | None:
        return self.interactions.get(token)

    async def _callback(self, request: web.Request) -> web.Response:
        found = self._interaction(request.match_info["token"])
        if found is None:
            return _error(404, 10062, "Unknown interaction")
        body = await request.json()
        found.callbacks.append(body)
        response: dict[str, Any] = {"interaction": {"id": str(found.id), "type": 2}}
        if body["type"] == 5:  # deferred: Discord shows "thinking…" as the original response
            message = self._new_message(str(found.channel), "", webhook=True)
            found.messages.append(int(message["id"]))
            response["interaction"]["response_message_id"] = message["id"]
            response["interaction"]["response_message_loading"] = True
            response["resource"] = {"type": 5}
        elif body["type"] == 4:
            message = self._new_message(
                str(found.channel), body["data"].get("content", ""), webhook=True
            )
            found.messages.append(int(message["id"]))
            response["resource"] = {"type": 4, "message": message}
        else:
            response["resource"] = {"type": body["type"]}
        return _json(response)

    async def _edit_webhook(self, request: web.Request) -> web.Response:
        found = self._interaction(request.match_info["token"])
        if found is None:
            return _error(404, 10015, "Unknown Webhook")
        target = request.match_info["message"]
        if target == "@original":
            if not found.messages:
                return _error(404, 10008, "Unknown Message")
            message_id = found.messages[0]
        else:
            message_id = int(target)
        return self._edit(message_id, await request.json())

    async def _followup(self, request: web.Request) -> web.Response:
        found = self._interaction(request.match_info["token"])
        if found is None:
            return _error(404, 10015, "Unknown Webhook")
        body = await request.json()
        message = self._new_message(str(found.channel), body.get("content", ""), webhook=True)
        found.messages.append(int(message["id"]))
        return _json(message)

    async def _attachment(self, request: web.Request) -> web.Response:
        data = self.attachments.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data)

    # -- gateway ------------------------------------------------------------------------
    def _guild_payload(self, guild_id: int) -> dict[str, Any]:
        return guild(self.extra_channels) if guild_id == GUILD_ID else second_guild()

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_json({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None})
        async for frame in ws:
            packet = json.loads(frame.data)
            op, data = packet.get("op"), packet.get("d")
            if op == 1:
                await ws.send_json({"op": 11, "d": None, "s": None, "t": None})
            elif op == 2:
                await self._identify(ws, data)
            elif op == 6:
                await self._resume(ws, data)
        for session in self.sessions.values():
            if session.ws is ws:
                session.ws = None
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        shard_id, shard_count = data.get("shard") or (0, 1)
        async with self._changed:
            self.identifies.append(data)
            self.identified.append(Identified(shard_id, shard_count, time.monotonic()))
            self._changed.notify_all()
        if data["intents"] & MESSAGE_CONTENT_INTENT and not self.message_content_enabled:
            await ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        if not 0 <= shard_id < shard_count:
            await ws.close(code=4010, message=b"Invalid shard.")
            return
        session = GatewaySession(shard_id, shard_count, f"session-{len(self.identifies)}", ws)
        self.sessions[shard_id] = session
        guilds = [g for g in self.guild_ids if (g >> 22) % shard_count == shard_id]
        ready = {
            "v": 10,
            "user": user(BOT_ID),
            "guilds": [{"id": str(g), "unavailable": True} for g in guilds],
            "session_id": session.session_id,
            "resume_gateway_url": self.url.replace("http", "ws", 1) + "/gateway",
            "application": {"id": str(BOT_ID), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "shard": [shard_id, shard_count],
        }
        await self.dispatch("READY", ready, shard=shard_id)
        for guild_id in guilds:
            await self.dispatch("GUILD_CREATE", self._guild_payload(guild_id), shard=shard_id)

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        async with self._changed:
            self.resumes.append(data)
            self._changed.notify_all()
        session = next(
            (s for s in self.sessions.values() if s.session_id == data.get("session_id")), None
        )
        if session is None:
            await ws.send_json({"op": 9, "d": False, "s": None, "t": None})
            return
        session.ws = ws
        for event in session.sent:  # what the bot missed while disconnected
            if event["s"] > (data.get("seq") or 0):
                await ws.send_json(event)
        session.sequence += 1
        await ws.send_json({"op": 0, "t": "RESUMED", "s": session.sequence, "d": {}})
