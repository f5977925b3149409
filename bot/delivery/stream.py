"""A streamed reply on a chat platform: paced edits, split messages, drafts, retries.

`StreamingReply` is the `ReplySink` every platform uses. It keeps the reply's state (the
text so far, a tool's status line, how it ends) and a background task that makes the
platform show that state, within the platform's limits:

* each message is updated at most once per `edit_interval_s`, and only when its text
  changed; every message of one destination shares that destination's `CallBudget`;
* a reply longer than one message continues in the next, cut by `bot.splitter` (code
  fences closed and re-opened), measured the way the platform measures;
* where the transport has drafts (Telegram private chats), the part being written is
  shown as a draft and each finished part is sent as a message;
* "retry after N s" pauses the destination, and the next update carries everything
  written meanwhile: text is delayed, never dropped;
* formatting the platform rejects is sent again as plain text;
* updates while the reply is written may be skipped to stay within the budget; the final
  state is always delivered (unless the destination itself is gone).

The state is re-rendered from scratch for every update, so what the person finally sees
is exactly the answer, whatever happened to the updates before it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Protocol

from bot import metrics as bot_metrics
from bot.delivery.pacing import CallBudget, Clock
from bot.delivery.transport import (
    DeliveryError,
    DestinationGone,
    FormattingRejected,
    Handle,
    MessageGone,
    RetryLater,
    Transport,
)
from bot.reply_sink import ReplySink
from bot.splitter import split_message

log = logging.getLogger(__name__)

# How many times the final update tries again after an unexpected transport error.
_FINAL_ATTEMPTS = 5
# Shown in a message the reply no longer needs (a status line pushed it past one piece).
LEFTOVER = "(see above)"
EMPTY_ANSWER = "(no answer)"


def status_line(name: str, detail: str) -> str:
    """How a running tool is shown in the message, e.g. "_searching the web: llama.cpp_"."""
    verbs = {
        "web_search": "searching the web",
        "search_documents": "reading the documents",
        "calculator": "calculating",
        "add_document": "adding the document",  # bot.docs.uploads.UPLOAD_STATUS
        "queue": "waiting",  # bot.reply_sink.QUEUE_STATUS
        "transcribe": "transcribing",  # bot.speech.replies.TRANSCRIBE_STATUS
    }
    verb = verbs.get(name, f"using {name}")
    detail = " ".join(detail.split())
    if len(detail) > 120:
        detail = detail[:119] + "…"
    return f"_{verb}: {detail}_" if detail else f"_{verb}…_"


class ReplyObserver(Protocol):
    """Told what a reply shows after each change that reached the platform (the reply
    journal writes it down, so another process can finish or mark the reply)."""

    async def shown(self, messages: Sequence[tuple[str, str]], text: str, complete: bool) -> None:
        """`messages`: (message reference, its text) in order; `text`: the answer so far;
        `complete`: the messages show the reply's final state (nothing more will change)."""


@dataclass
class _Message(Generic[Handle]):
    """One message of the reply as the platform shows it now."""

    handle: Handle
    text: str
    plain: bool  # the platform refused its formatting: it is sent without
    updated_at: float


class StreamingReply(ReplySink, Generic[Handle]):
    def __init__(self, transport: Transport[Handle], window: CallBudget, clock: Clock) -> None:
        self._transport = transport
        self._limits = transport.limits
        self._window = window
        self._clock = clock
        self._text = ""
        self._status = ""
        self._ending: str | None = None  # set by finish/fail: the reply is complete
        self._changed = asyncio.Event()
        self._ended = asyncio.Event()
        self._messages: list[_Message[Handle]] = []
        self._draft_shown = ""
        self._draft_at = float("-inf")
        self._gone = False
        self._calls = 0  # sends, edits and drafts made
        self._tasks: list[asyncio.Task[None]] = []
        self._observer: ReplyObserver | None = None
        self._nonce_base = ""  # names this reply's messages to the platform (`identify`)
        self.delivered = asyncio.Event()  # set once the final state is shown (or cannot be)

    def observe(self, observer: ReplyObserver | None) -> None:
        self._observer = observer

    def identify(self, nonce_base: str) -> None:
        """Name each new message of this reply `nonce_base:index` to the platform, so a
        process that continues the reply after a crash sends none of them twice."""
        self._nonce_base = nonce_base

    @property
    def text(self) -> str:
        """The answer appended so far (no status line, no ending)."""
        return self._text

    def restore(self, messages: Sequence[tuple[str, str]], text: str) -> None:
        """Continue a reply another process began: `messages` (reference, text shown) are
        edited from here on instead of sent again; `text` is the answer they show."""
        self._messages = [
            _Message(self._transport.handle_of(ref), shown, False, float("-inf"))
            for ref, shown in messages
        ]
        self._text = text
        self._changed.set()

    def for_same_destination(self) -> StreamingReply[Handle]:
        """A new reply to the same destination, within the same budget."""
        return StreamingReply(self._transport, self._window, self._clock)

    # -- ReplySink ----------------------------------------------------------------------
    async def start(self) -> None:
        if self._tasks:
            return
        self._tasks = [
            asyncio.create_task(self._keep_typing(), name="reply-typing"),
            asyncio.create_task(self._deliver_updates(), name="reply-updates"),
        ]

    async def append(self, text: str) -> None:
        if text:
            self._text += text
            self._status = ""
            self._changed.set()

    async def tool_status(self, name: str, detail: str) -> None:
        self._status = status_line(name, detail)
        self._changed.set()

    async def finish(self, note: str = "") -> None:
        ending = f"\n\n_{note}_" if note else ""
        await self._end(ending)

    async def fail(self, message: str) -> None:
        ending = f"\n\n⚠️ {message}" if self._text else f"⚠️ {message}"
        await self._end(ending)

    @property
    def abandoned(self) -> bool:
        return self._gone

    # -- what is shown ------------------------------------------------------------------

    def _display(self) -> str:
        if self._ending is not None:
            final = self._text + self._ending
            return final if final.strip() else EMPTY_ANSWER
        if self._status:
            return f"{self._text}\n\n{self._status}" if self._text.strip() else self._status
        return self._text

    def _pieces(self, text: str) -> list[str]:
        """`text` cut into messages that fit, as the platform measures them."""
        limit = self._limits.max_length
        fitted: list[str] = []
        for piece in split_message(text, limit) if text.strip() else []:
            fitted.extend(self._fit(piece, limit))
        return fitted

    def _fit(self, piece: str, limit: int) -> list[str]:
        # Formatting removed or UTF-16 surrogates can make the measured length differ from
        # the character count: cut such a piece again, with a proportionally smaller limit.
        length = self._transport.rendered_length(piece)
        if length <= self._limits.max_length:
            return [piece]
        smaller = max(20, min(len(piece) - 1, limit * self._limits.max_length // length - 8))
        return [part for sub in split_message(piece, smaller) for part in self._fit(sub, smaller)]

    # -- delivery ---------------------------------------------------------------------
    async def _end(self, ending: str) -> None:
        if self._ending is not None:
            return
        self._ending = ending
        self._changed.set()
        if not self._tasks:  # never started (e.g. a refused request): deliver now
            await self.start()
        self._ended.set()
        await self.delivered.wait()
        for task in self._tasks:
            task.cancel()
        for outcome in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(outcome, Exception):  # a bug here must not cost the chat service
                log.error("delivering a reply failed", exc_info=outcome)

    async def _keep_typing(self) -> None:
        while self._ending is None and not self._gone:
            try:
                await bot_metrics.platform_call("typing", self._transport.typing())
            except DestinationGone:
                self._gone = True
                self._changed.set()
                return
            except RetryLater as exc:
                await self._clock.sleep(exc.retry_after_s)
                continue
            except Exception:  # a typing indicator is a nicety: never let it end the reply
                log.debug("typing indicator failed", exc_info=True)
            await self._wait_or_end(self._limits.typing_interval_s)

    async def _wait_or_end(self, seconds: float) -> None:
        """Sleep `seconds`, or less if the reply ends meanwhile."""
        sleeper = asyncio.ensure_future(self._clock.sleep(seconds))
        ender = asyncio.ensure_future(self._ended.wait())
        try:
            await asyncio.wait({sleeper, ender}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (sleeper, ender):
                task.cancel()

    async def _deliver_updates(self) -> None:
        try:
            while self._ending is None and not self._gone:
                await self._changed.wait()
                if self._ending is not None:
                    break
                self._changed.clear()
                calls_before = self._calls
                try:
                    delay = await self._update(final=False)
                except DeliveryError as exc:  # an update of the draft; the final one follows
                    log.info("a reply update failed: %s", exc)
                    delay = self._limits.edit_interval_s
                if delay > 0:
                    self._changed.set()  # something is still waiting to be shown
                elif self._calls > calls_before:
                    # The live message was just updated and cannot be again for a while:
                    # wait instead of re-rendering the whole reply for every token.
                    delay = self._limits.edit_interval_s
                if delay > 0:
                    await self._wait_or_end(delay)
            await self._deliver_final()
        finally:
            bot_metrics.reply_delivered()
            self.delivered.set()

    async def _deliver_final(self) -> None:
        failures = 0
        while not self._gone:
            try:
                delay = await self._update(final=True)
            except DeliveryError as exc:  # unexpected kinds: retry a few times
                failures += 1
                if failures >= _FINAL_ATTEMPTS:
                    log.warning("giving up on a reply's final update: %s", exc)
                    return
                delay = self._limits.edit_interval_s * failures
            if delay <= 0:
                return
            await self._clock.sleep(delay)

    def _final_pieces(self) -> list[str]:
        pieces = self._pieces(self._display())
        return pieces + [LEFTOVER] * (len(self._messages) - len(pieces))

    async def _update(self, *, final: bool) -> float:
        """Bring the messages closer to the current state. Returns 0 when they show it, or
        the seconds to wait before trying again."""
        pieces = self._final_pieces() if final else self._pieces(self._display())
        drafting = self._transport.supports_drafts and not final
        for index, piece in enumerate(pieces):
            if self._gone:
                return 0.0
            if index < len(self._messages) and self._messages[index].text == piece:
                continue
            if drafting and index == len(pieces) - 1 and index >= len(self._messages):
                return await self._update_draft(piece)
            wait = await self._wait_before(index, final)
            if wait > 0:
                return wait
            if not await self._show(index, piece):
                return max(await self._window.wait_s(), 0.05)
        return 0.0

    async def _wait_before(self, index: int, final: bool) -> float:
        """Seconds before message `index` may be sent or edited (0: now, call recorded)."""
        if index < len(self._messages):
            since = self._clock.now() - self._messages[index].updated_at
            if since < self._limits.edit_interval_s:
                return self._limits.edit_interval_s - since
        keep_free = 0 if final else self._limits.reserve_for_final
        if not await self._window.try_take(keep_free):
            return max(await self._window.wait_s(keep_free), 0.05)
        return 0.0

    async def _update_draft(self, piece: str) -> float:
        if piece == self._draft_shown:
            return 0.0
        since = self._clock.now() - self._draft_at
        if since < self._limits.edit_interval_s:
            return self._limits.edit_interval_s - since
        if not await self._window.try_take(self._limits.reserve_for_final):
            return max(await self._window.wait_s(self._limits.reserve_for_final), 0.05)
        self._draft_at = self._clock.now()
        self._calls += 1
        try:
            await bot_metrics.platform_call("draft", self._transport.draft(piece))
            bot_metrics.text_shown(bool(self._text))
            self._draft_shown = piece
            await self._tell_observer()
        except RetryLater as exc:
            await self._window.pause(exc.retry_after_s)
            return exc.retry_after_s
        except DestinationGone:
            self._gone = True
        except DeliveryError as exc:  # a draft is only a preview: the final message follows
            log.debug("draft update failed: %s", exc)
        return 0.0

    async def _show(self, index: int, piece: str) -> bool:
        """Send or edit message `index` to show `piece`; False when asked to retry later."""
        shown = self._messages[index] if index < len(self._messages) else None
        plain = shown is not None and shown.plain
        try:
            try:
                handle = await self._call(index, piece, plain)
            except FormattingRejected:
                log.info("formatting rejected; sending message %d as plain text", index)
                plain = True
                handle = await self._call(index, piece, plain)
        except RetryLater as exc:
            await self._window.pause(exc.retry_after_s)
            return False
        except DestinationGone:
            log.info("destination gone; the rest of this reply cannot be delivered")
            self._gone = True
            return True
        bot_metrics.text_shown(bool(self._text))
        message = _Message(handle, piece, plain, self._clock.now())
        if shown is None:
            self._messages.append(message)
        else:
            self._messages[index] = message
        await self._tell_observer()
        return True

    async def _tell_observer(self) -> None:
        if self._observer is None:
            return
        refs = [(self._transport.message_ref(m.handle), m.text) for m in self._messages]
        complete = self._ending is not None and [m.text for m in self._messages] == (
            self._final_pieces()
        )
        try:
            await self._observer.shown(refs, self._text, complete)
        except Exception:  # the journal is a safety net: never let it cost the reply
            log.warning("could not record the reply's progress", exc_info=True)

    async def _call(self, index: int, piece: str, plain: bool) -> Handle:
        """Edit message `index` to `piece`, or send `piece` as that new message; the
        message's handle."""
        shown = self._messages[index] if index < len(self._messages) else None
        self._calls += 1
        if shown is not None:
            try:
                edit = self._transport.edit(shown.handle, piece, plain=plain)
                await bot_metrics.platform_call("edit", edit)
                return shown.handle
            except MessageGone:  # deleted by someone: post the text again
                pass
        nonce = f"{self._nonce_base}:{index}" if self._nonce_base else ""
        sending = self._transport.send(piece, plain=plain, nonce=nonce)
        return await bot_metrics.platform_call("send", sending)
