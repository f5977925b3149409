"""A local stand-in for Telegram's Bot API server, for python-telegram-bot's real HTTP stack.

PTB reaches it through `base_url`/`base_file_url`. It hands out queued updates through
`getUpdates` (long polling with a short cap; an update stays pending until a later
offset confirms it, and a second poller while one waits ends the first with 409
Conflict, as Telegram does), records every call, keeps the messages the
bot sent (with each edit), and enforces what Telegram enforces and the bot must cope
with: 4096 UTF-16 code units per message, "message is not modified" for an edit to the
same content, flood control (429 with `retry_after`), entity parse errors, and a chat
that removed the bot (403). Updates are built the way the Bot API serialises them.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456:TEST-token"
BOT_ID = 777
BOT_USERNAME = "CommonsTestBot"
# The user Telegram shows as the sender of an anonymous group admin's messages.
ANONYMOUS_ADMIN = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}
MAX_TEXT = 4096
# JSON-encoded parameters (PTB sends everything else as plain form strings).
_JSON_FIELDS = {
    "entities",
    "caption_entities",
    "allowed_updates",
    "commands",
    "scope",
    "link_preview_options",
    "reply_parameters",
}
_COMMAND = re.compile(r"^/\w+(?:@\w+)?")
_MENTION = re.compile(r"@\w+")

Json = dict[str, Any]


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def utf16_slice(text: str, offset: int, length: int) -> str:
    data = text.encode("utf-16-le")
    return data[offset * 2 : (offset + length) * 2].decode("utf-16-le")


def user(user_id: int, name: str) -> Json:
    return {"id": user_id, "is_bot": False, "first_name": name, "username": name.lower()}


def private_chat(person: Json) -> Json:
    return {"id": person["id"], "type": "private", "first_name": person["first_name"]}


def group_chat(chat_id: int, title: str = "Group", *, forum: bool = False) -> Json:
    chat: Json = {"id": chat_id, "type": "supergroup", "title": title}
    if forum:
        chat["is_forum"] = True
    return chat


def entities_of(text: str) -> list[Json]:
    """The entities Telegram finds in a typed text: a leading command and @mentions."""
    found: list[Json] = []
    command = _COMMAND.match(text)
    if command:
        found.append({"type": "bot_command", "offset": 0, "length": utf16_len(command.group())})
    for mention in _MENTION.finditer(text):
        if command and mention.start() < command.end():
            continue
        offset = utf16_len(text[: mention.start()])
        found.append({"type": "mention", "offset": offset, "length": utf16_len(mention.group())})
    return found


@dataclass
class Call:
    method: str
    params: Json
    at: float = field(default_factory=time.monotonic)  # when it arrived
    status: int = 200  # what it was answered

    def int(self, name: str) -> int | None:
        value = self.params.get(name)
        return None if value is None else int(value)


@dataclass
class Sent:
    """A message the bot sent, as it looks now; `versions` holds every text it showed."""

    chat_id: int
    message_id: int
    thread_id: int | None
    text: str
    entities: list[Json]
    versions: list[str] = field(default_factory=list)
    updated_at: float = field(default_factory=time.monotonic)  # when it last changed

    def covered(self, kind: str) -> str:
        """The text under entities of `kind` (e.g. "pre"), concatenated."""
        return "".join(
            utf16_slice(self.text, entity["offset"], entity["length"])
            for entity in self.entities
            if entity["type"] == kind
        )


@dataclass
class Failure:
    method: str
    remaining: int
    code: int
    description: str
    retry_after: int | None = None
    when: Callable[[Json], bool] | None = None
    every: int = 1  # fail every n-th matching call
    seen: int = 0


class ApiError(Exception):
    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after


class FakeBotApi:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.sent: list[Sent] = []
        self.drafts: list[Call] = []
        self.members: dict[tuple[int, int], str] = {}  # (chat, user) -> status
        self.files: dict[str, bytes] = {}
        self.kicked: set[int] = set()
        self.max_poll_s = 0.5
        self._chats: dict[int, Json] = {}
        self._updates: list[Json] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._failures: list[Failure] = []
        self._activity = asyncio.Event()  # set by every recorded call
        self._queued = asyncio.Event()  # set by every queued update
        # Set to end the long poll waiting now: another poller came (409 Conflict).
        self._poll_ended: asyncio.Event | None = None
        self.conflicts = 0  # polls ended by another poller
        # False: offsets are never confirmed (as when the confirming call never reached
        # Telegram), so every poll hands out the same updates again.
        self.confirm_offsets = True
        self.deliveries: dict[int, int] = {}  # update_id -> times handed out by getUpdates
        self.pushed: dict[int, Json] = {}  # update_id -> every update queued by `push`
        self.webhook_url = ""  # set by setWebhook, cleared by deleteWebhook
        self._runner: web.AppRunner | None = None
        self.base_url = ""
        self.base_file_url = ""

    # -- lifecycle --------------------------------------------------------------------
    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/bot"
        self.base_file_url = f"http://127.0.0.1:{port}/file/bot"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- scripting --------------------------------------------------------------------
    def fail_next(
        self,
        method: str,
        count: int = 1,
        *,
        code: int = 400,
        description: str = "Bad Request",
        retry_after: int | None = None,
        when: Callable[[Json], bool] | None = None,
        every: int = 1,
    ) -> None:
        """Answer the next `count` calls of `method` (matching `when`; only every `every`-th
        of them) with an error."""
        if retry_after is not None:
            code, description = 429, f"Too Many Requests: retry after {retry_after}"
        failure = Failure(method, count, code, description, retry_after, when, every)
        self._failures.append(failure)

    def add_file(self, file_id: str, data: bytes) -> None:
        self.files[file_id] = data

    def push(self, message: Json) -> Json:
        """Queue an update carrying `message`; returns the message."""
        update = self.update(message)
        self.pushed[update["update_id"]] = update
        self._updates.append(update)
        self._queued.set()
        return message

    def update(self, message: Json) -> Json:
        """An update carrying `message` (to post to a webhook, or to queue)."""
        self._chats[message["chat"]["id"]] = message["chat"]
        return {"update_id": next(self._update_ids), "message": message}

    def message(
        self,
        chat: Json,
        sender: Json,
        text: str | None = None,
        *,
        thread_id: int | None = None,
        reply_to: Json | None = None,
        document: Json | None = None,
        caption: str | None = None,
        sender_chat: Json | None = None,
        quote: str | None = None,
        media: dict[str, Json] | None = None,
    ) -> Json:
        """A message as the Bot API would deliver it (entities found as Telegram would)."""
        message: Json = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": sender,
        }
        if text is not None:
            message["text"] = text
            if entities := entities_of(text):
                message["entities"] = entities
        if document is not None:
            message["document"] = document
        # {"voice": {...}}, {"audio": {...}} or {"video_note": {...}}
        message.update(media or {})
        if caption is not None:
            message["caption"] = caption
            if entities := entities_of(caption):
                message["caption_entities"] = entities
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
            # In a topic, a message that replies to nothing else replies to the topic's start.
            reply_to = reply_to or {
                "message_id": thread_id,
                "date": int(time.time()),
                "chat": chat,
                "from": user(1, "Creator"),
                "message_thread_id": thread_id,
                "forum_topic_created": {"name": "Topic", "icon_color": 7322096},
            }
        if reply_to is not None:
            message["reply_to_message"] = reply_to
        if quote is not None:  # the part of the replied message the person selected
            message["quote"] = {"text": quote, "position": 0, "is_manual": True}
        if sender_chat is not None:
            message["sender_chat"] = sender_chat
        return message

    def bot_message(self, sent: Sent) -> Json:
        """A message the bot sent, as it appears in `reply_to_message`."""
        return self._message_json(sent)

    # -- inspection -------------------------------------------------------------------
    def calls_of(self, method: str) -> list[Call]:
        return [call for call in self.calls if call.method == method]

    def sent_to(self, chat_id: int, thread_id: int | None = None) -> list[Sent]:
        return [s for s in self.sent if s.chat_id == chat_id and s.thread_id == thread_id]

    async def wait_for(self, condition: Callable[[], bool], seconds: float = 20.0) -> None:
        """Wait until `condition()` holds; it is checked after each call the bot makes."""
        async with asyncio.timeout(seconds):
            while not condition():
                self._activity.clear()
                await self._activity.wait()

    def _record(self, call: Call) -> None:
        self.calls.append(call)
        self._activity.set()

    # -- the API ----------------------------------------------------------------------
    async def _api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != TOKEN:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        method = request.match_info["method"]
        form = await request.post()
        params: Json = {}
        for name, value in form.items():
            if isinstance(value, str):
                params[name] = json.loads(value) if name in _JSON_FIELDS else value
        call = Call(method, params)
        self._record(call)
        try:
            self._scripted_failure(call)
            result = await self._handle(call, request)
        except ApiError as exc:
            call.status = exc.code
            body: Json = {"ok": False, "error_code": exc.code, "description": exc.description}
            if exc.retry_after is not None:
                body["parameters"] = {"retry_after": exc.retry_after}
            return web.json_response(body, status=exc.code)
        return web.json_response({"ok": True, "result": result})

    def _scripted_failure(self, call: Call) -> None:
        for failure in self._failures:
            if failure.method != call.method or failure.remaining <= 0:
                continue
            if failure.when is not None and not failure.when(call.params):
                continue
            failure.seen += 1
            if failure.seen % failure.every:
                continue
            failure.remaining -= 1
            raise ApiError(failure.code, failure.description, failure.retry_after)

    async def _handle(self, call: Call, request: web.Request) -> Any:
        handlers: dict[str, Callable[[Call], Any]] = {
            "getMe": lambda _: {
                "id": BOT_ID,
                "is_bot": True,
                "first_name": "Commons",
                "username": BOT_USERNAME,
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
            },
            "deleteWebhook": self._delete_webhook,
            "setWebhook": self._set_webhook,
            "getWebhookInfo": lambda _: {
                "url": self.webhook_url,
                "has_custom_certificate": False,
                "pending_update_count": 0,
            },
            "setMyCommands": lambda _: True,
            "sendChatAction": self._chat_action,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message,
            "sendMessageDraft": self._draft,
            "getChatMember": self._chat_member,
            "getFile": self._get_file,
        }
        if call.method == "getUpdates":
            return await self._get_updates(call, request)
        handler = handlers.get(call.method)
        if handler is None:
            raise ApiError(404, "Not Found: method not found")
        return handler(call)

    async def _get_updates(self, call: Call, request: web.Request) -> list[Json]:
        if self._poll_ended is not None:  # another poll is waiting: it is ended
            self._poll_ended.set()
        ended = self._poll_ended = asyncio.Event()
        try:
            offset = call.int("offset") or 0
            if self.confirm_offsets:
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
            pending = [u for u in self._updates if u["update_id"] >= offset]
            wait_s = min(float(call.params.get("timeout", 0)), self.max_poll_s)
            deadline = time.monotonic() + wait_s
            while not pending and (left := deadline - time.monotonic()) > 0:
                self._queued.clear()
                queued = asyncio.ensure_future(self._queued.wait())
                other = asyncio.ensure_future(ended.wait())
                await asyncio.wait({queued, other}, timeout=left, return_when="FIRST_COMPLETED")
                queued.cancel()
                other.cancel()
                if ended.is_set():
                    # Only a poller still waiting for the answer sees the conflict; one
                    # that went away (a stopped process) was not running any more.
                    transport = request.transport
                    self.conflicts += transport is not None and not transport.is_closing()
                    raise ApiError(
                        409,
                        "Conflict: terminated by other getUpdates request; make sure that "
                        "only one bot instance is running",
                    )
                pending = [u for u in self._updates if u["update_id"] >= offset]
        finally:
            if self._poll_ended is ended:
                self._poll_ended = None
        handed = pending[: call.int("limit") or 100]
        for update in handed:
            self.deliveries[update["update_id"]] = self.deliveries.get(update["update_id"], 0) + 1
        return handed

    def _set_webhook(self, call: Call) -> bool:
        self.webhook_url = str(call.params.get("url", ""))
        return True

    def _delete_webhook(self, call: Call) -> bool:
        self.webhook_url = ""
        return True

    def redeliver(self, update_id: int) -> None:
        """Queue an update that was already handed out (and confirmed) once more."""
        self._updates.append(self.pushed[update_id])
        self._queued.set()

    def _check_chat(self, call: Call) -> int:
        chat_id = call.int("chat_id")
        if chat_id is None:
            raise ApiError(400, "Bad Request: chat_id is empty")
        if chat_id in self.kicked:
            raise ApiError(403, "Forbidden: bot was kicked from the supergroup chat")
        return chat_id

    @staticmethod
    def _check_text(call: Call) -> str:
        text = str(call.params.get("text", ""))
        if not text.strip():
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(text) > MAX_TEXT:
            raise ApiError(400, "Bad Request: message is too long")
        for entity in call.params.get("entities") or []:
            if entity["offset"] + entity["length"] > utf16_len(text) or entity["length"] <= 0:
                raise ApiError(400, "Bad Request: can't parse entities: entity out of range")
        return text

    def _chat_action(self, call: Call) -> bool:
        self._check_chat(call)
        return True

    def _draft(self, call: Call) -> bool:
        chat_id = self._check_chat(call)
        if self._chats.get(chat_id, {}).get("type", "private") != "private":
            raise ApiError(400, "Bad Request: drafts can be sent only to private chats")
        if call.params.get("text"):
            self._check_text(call)
        self.drafts.append(call)
        return True

    def _send_message(self, call: Call) -> Json:
        chat_id = self._check_chat(call)
        text = self._check_text(call)
        sent = Sent(
            chat_id=chat_id,
            message_id=next(self._message_ids),
            thread_id=call.int("message_thread_id"),
            text=text,
            entities=list(call.params.get("entities") or []),
            versions=[text],
        )
        self.sent.append(sent)
        return self._message_json(sent)

    def _edit_message(self, call: Call) -> Json:
        chat_id = self._check_chat(call)
        message_id = call.int("message_id")
        found = [s for s in self.sent if s.chat_id == chat_id and s.message_id == message_id]
        if not found:
            raise ApiError(400, "Bad Request: message to edit not found")
        sent = found[0]
        text = self._check_text(call)
        entities = list(call.params.get("entities") or [])
        if text == sent.text and entities == sent.entities:
            raise ApiError(
                400,
                "Bad Request: message is not modified: specified new message content and "
                "reply markup are exactly the same as a current content and reply markup "
                "of the message",
            )
        sent.text, sent.entities = text, entities
        sent.versions.append(text)
        sent.updated_at = time.monotonic()
        return self._message_json(sent)

    def _chat_member(self, call: Call) -> Json:
        chat_id = self._check_chat(call)
        user_id = call.int("user_id") or 0
        status = self.members.get((chat_id, user_id), "member")
        member: Json = {"status": status, "user": user(user_id, f"user{user_id}")}
        if status == "creator":
            member["is_anonymous"] = False
        if status == "administrator":
            member.update(
                {
                    name: False
                    for name in (
                        "can_be_edited",
                        "is_anonymous",
                        "can_manage_chat",
                        "can_delete_messages",
                        "can_manage_video_chats",
                        "can_restrict_members",
                        "can_promote_members",
                        "can_change_info",
                        "can_invite_users",
                        "can_post_stories",
                        "can_edit_stories",
                        "can_delete_stories",
                    )
                }
            )
        return member

    def _get_file(self, call: Call) -> Json:
        file_id = str(call.params.get("file_id"))
        if file_id not in self.files:
            raise ApiError(400, "Bad Request: invalid file_id")
        return {
            "file_id": file_id,
            "file_unique_id": f"u-{file_id}",
            "file_size": len(self.files[file_id]),
            "file_path": f"documents/{file_id}",
        }

    async def _download(self, request: web.Request) -> web.Response:
        self._record(Call("download", {"path": request.match_info["path"]}))
        file_id = request.match_info["path"].removeprefix("documents/")
        if request.match_info["token"] != TOKEN or file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])

    def _message_json(self, sent: Sent) -> Json:
        message: Json = {
            "message_id": sent.message_id,
            "date": int(time.time()),
            "chat": self._chats.get(sent.chat_id, {"id": sent.chat_id, "type": "private"}),
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Commons"},
            "text": sent.text,
        }
        message["from"]["username"] = BOT_USERNAME
        if sent.entities:
            message["entities"] = sent.entities
        if sent.thread_id is not None:
            message["message_thread_id"] = sent.thread_id
            message["is_topic_message"] = True
        return message
