"""A reply whose process died is finished, or marked interrupted and answered again.

Every reply to a claimed event is journalled (`storage.reply_journal`) while it is
written: the messages it sent, the answer's text, the pool job writing it. When the
process dies, its claim's lease runs out and another process (or the same one after a
restart) takes the event over (`bot.coordination`). Before answering, it looks at the
journal:

* the answer was being streamed from a pool job whose output is still in Redis (the
  worker goes on generating when the requester dies): it re-attaches to that output and
  finishes the same messages, and the conversation's history gets the whole answer;
* otherwise (a tool was running, the job is gone, the output does not continue what
  was shown): the cut messages are marked interrupted, and the question is answered
  again below them.

So nothing is left looking finished while cut. A reply ended on purpose by a restart
(SIGTERM) says so in its note, and its question is answered again after the restart
(`answer_again_after_restart`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, Protocol

from redis.exceptions import RedisError

from bot.delivery.stream import StreamingReply
from bot.failures import describe_failure
from bot.turn_queue import has_place
from inference.client import JOB_SUBMITTED
from inference.errors import InferenceError
from inference.protocol import Chunk
from storage.reply_journal import JournalEntry, ReplyJournalStore

log = logging.getLogger(__name__)

INTERRUPTED = "interrupted: the bot restarted while writing this; the answer follows below"


class _Reattached(enum.Enum):
    FINISHED = "finished"  # the messages show the whole answer
    ENDED_CUT = "ended cut"  # they were continued, then ended as interrupted
    NOT_ATTACHED = "not attached"  # untouched: still to be marked interrupted


class JobOutputs(Protocol):
    """Where a pool job's output is read again (`inference.client.InferenceClient`)."""

    async def has_output(self, job_id: str) -> bool: ...

    def follow(self, job_id: str, resume_from: str = "0-0") -> AsyncIterator[Chunk]: ...

    async def cancel(self, job_id: str) -> None: ...


class JournalTracker:
    """Writes one reply's progress to the journal (a `ReplyObserver`), with the job
    generating it and the conversation it belongs to."""

    def __init__(
        self,
        store: ReplyJournalStore,
        key: str,
        reply: StreamingReply[Any],
        entry: JournalEntry | None = None,
    ) -> None:
        self.store = store
        self.key = key
        self.entry = entry or JournalEntry(nonce_base=secrets.token_hex(8))
        reply.identify(self.entry.nonce_base)
        self.again = False  # ended by a restart: answer the question again afterwards
        self._reply = reply
        self._saving: set[asyncio.Task[None]] = set()

    async def shown(self, messages: Sequence[tuple[str, str]], text: str, complete: bool) -> None:
        self.entry.messages = list(messages)
        self.entry.text = text
        self.entry.complete = complete
        await self.store.save(self.key, self.entry)

    def job_started(self, job_id: str) -> None:
        """A model call began for this reply: its output continues the text shown now."""
        self.entry.job_id = job_id
        self.entry.job_base = self._reply.text
        self._save_soon()

    def conversation(self, key: str) -> None:
        self.entry.conversation = key
        self._save_soon()

    def _save_soon(self) -> None:
        task = asyncio.ensure_future(self._save())
        self._saving.add(task)
        task.add_done_callback(self._saving.discard)

    async def _save(self) -> None:
        try:
            await self.store.save(self.key, self.entry)
        except (RedisError, OSError) as exc:
            log.warning("could not record the reply's progress: %s", exc)

    async def drop(self) -> None:
        for task in list(self._saving):
            task.cancel()
        await self.store.drop(self.key)


_tracker: ContextVar[JournalTracker | None] = ContextVar("reply_tracker", default=None)


def current_tracker() -> JournalTracker | None:
    """The journal of the reply being written in this context, if any."""
    return _tracker.get()


def note_conversation(key: str) -> None:
    """The reply being written in this context answers in conversation `key`."""
    tracker = _tracker.get()
    if tracker is not None:
        tracker.conversation(key)


def answer_again_after_restart() -> bool:
    """The reply in this context was ended by a restart: its question is to be answered
    again once the bot is back (its claim is given up, not marked done). False when
    nothing will answer it again (this process serves without Redis coordination)."""
    tracker = _tracker.get()
    if tracker is None:
        return False
    tracker.again = True
    return True


class ReplyJournal:
    def __init__(
        self,
        store: ReplyJournalStore,
        jobs: JobOutputs | None = None,
        record_answer: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        self.store = store
        self._jobs = jobs
        self._record_answer = record_answer

    def track(
        self, key: str, reply: StreamingReply[Any], entry: JournalEntry | None
    ) -> JournalTracker:
        """Journal `reply` under `key` from now on, and the jobs started for it in this
        context."""
        tracker = JournalTracker(self.store, key, reply, entry)
        reply.observe(tracker)
        _tracker.set(tracker)
        JOB_SUBMITTED.set(tracker.job_started)
        return tracker

    async def resume(self, key: str, reply: StreamingReply[Any]) -> StreamingReply[Any] | None:
        """Journal the reply to event `key`. If another process left a reply to it
        unfinished, finish that one (None: nothing more to do), or mark it interrupted;
        returns the reply to answer into."""
        entry = await self.store.load(key)
        if entry is None or not (entry.messages or entry.text):
            self.track(key, reply, None)
            return reply
        if entry.complete:  # its process died after showing all of it: not again
            log.info("a reply to %s was delivered whole before its process died", key)
            await self.store.drop(key)
            return None
        log.info(
            "a reply to %s was left unfinished: %d messages shown, job %s",
            key,
            len(entry.messages),
            entry.job_id or "none",
        )
        outcome = await self._reattach(key, entry, reply)
        if outcome is _Reattached.FINISHED:
            log.info("finished a reply left unfinished by another process (%s)", key)
            return None
        if outcome is _Reattached.NOT_ATTACHED:  # `reply` is untouched: it marks the cut
            await self._mark_interrupted(entry, reply)
        fresh = reply.for_same_destination()
        again = JournalEntry(conversation=entry.conversation, nonce_base=secrets.token_hex(8))
        self.track(key, fresh, again)
        # From now on the journal describes the new answer, not the cut reply.
        await self.store.save(key, again)
        return fresh

    async def _reattach(
        self, key: str, entry: JournalEntry, reply: StreamingReply[Any]
    ) -> _Reattached:
        """Finish `entry`'s messages in `reply` (journalled under `key` once it goes on)
        from its job's output, when that shows exactly what the job wrote after the
        text."""
        shown_of_job = entry.text[len(entry.job_base) :]
        if (
            self._jobs is None
            or not entry.job_id
            or not entry.text.startswith(entry.job_base)
            or not shown_of_job  # nothing of this job was shown: it may not be the answer
            or not await self._jobs.has_output(entry.job_id)
        ):
            return _Reattached.NOT_ATTACHED
        output = ""
        attached = False
        try:
            async for chunk in self._jobs.follow(entry.job_id):
                if chunk.kind == "done":
                    break
                if chunk.kind == "tool_call":  # the answer needs a tool: not ours to run
                    if attached:
                        reply.observe(None)  # ended cut: not to be journalled as shown whole
                        await reply.fail(INTERRUPTED)
                        return _Reattached.ENDED_CUT
                    return _Reattached.NOT_ATTACHED
                output += chunk.text
                if attached:
                    await reply.append(chunk.text)
                elif len(output) >= len(shown_of_job):
                    if not output.startswith(shown_of_job):
                        return _Reattached.NOT_ATTACHED
                    try:
                        reply.restore(entry.messages, entry.job_base)
                    except NotImplementedError:  # it cannot edit a message it did not send
                        return _Reattached.NOT_ATTACHED
                    self.track(key, reply, entry)
                    await reply.start()
                    await reply.append(output)
                    attached = True
                    has_place()  # its messages are where they are: the next event may go
                elif not shown_of_job.startswith(output):
                    return _Reattached.NOT_ATTACHED
        except InferenceError as exc:
            if not attached:
                return _Reattached.NOT_ATTACHED
            await reply.fail(describe_failure(exc, "a re-attached reply"))
            return _Reattached.FINISHED
        if not attached:
            return _Reattached.NOT_ATTACHED
        await reply.finish()
        if self._record_answer is not None and entry.conversation:
            await self._record_answer(entry.conversation, reply.text)
        return _Reattached.FINISHED

    async def _mark_interrupted(self, entry: JournalEntry, cut: StreamingReply[Any]) -> None:
        if entry.job_id and self._jobs is not None:
            try:
                await self._jobs.cancel(entry.job_id)  # nobody reads it any more
            except (RedisError, OSError) as exc:
                log.warning("could not cancel the job of an interrupted reply: %s", exc)
        if not entry.messages:  # only a draft was shown: the new answer replaces it
            return
        try:
            cut.restore(entry.messages, entry.text)
        except NotImplementedError:  # e.g. an interaction's reply: its token died with it
            log.info("a cut reply cannot be edited from here; answering again")
            return
        await cut.fail(INTERRUPTED)
