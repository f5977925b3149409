"""Whose question is answered next in a conversation: one at a time, in order.

The conversation's lease (`storage.conversation_lock`) lets one answer be written at a
time; the queue (`storage.conversation_queue`) orders the questions waiting for it,
across processes. A waiting question keeps its ticket alive by polling, and its reply
shows how many answers are ahead of it until its turn comes.

A caller that must keep several questions in order before they reach the queue (a chat's
updates taken one by one from an ordered intake) learns when a question has its place:
`tell_when_in_line(event)` before asking, and `event` is set once the question is being
answered or queued; the next question may then go, and is queued behind it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from bot.errors import ConversationBusy, GenerationFailed
from bot.reply_sink import ReplySink
from bot.scope import Scope
from storage.conversation_lock import ConversationLocks, Lease
from storage.conversation_queue import ConversationQueue, QueueFull, Ticket

# How often a queued question checks whether its turn has come (and keeps its place).
QUEUE_POLL_S = 0.2


_in_line: ContextVar[asyncio.Event | None] = ContextVar("in_line", default=None)


def tell_when_in_line(event: asyncio.Event) -> None:
    """Set `event` once the question asked from this context has its place."""
    _in_line.set(event)


def has_place() -> None:
    """The question asked from this context has its place (or needs none): the next one
    may go."""
    event = _in_line.get()
    if event is not None:
        event.set()


class TurnQueue:
    def __init__(self, locks: ConversationLocks, queue: ConversationQueue) -> None:
        self._locks = locks
        self._queue = queue

    async def wait_turn(
        self,
        scope: Scope,
        sink: ReplySink,
        *,
        check_open: Callable[[], None],
        interrupt: Callable[[], Awaitable[None]] | None = None,
    ) -> Lease:
        """The conversation's lease, once the questions asked before this one are
        answered; meanwhile the person sees that the question is queued. `interrupt`
        (busy mode "interrupt") stops the answer being written instead of waiting for it;
        `check_open` raises once the process is stopping."""
        key = scope.conversation_key
        lease = await self._locks.acquire(key, scope.user_key)
        if lease is not None and await self._queue.waiting(key) == 0:
            has_place()
            return lease
        if lease is not None:  # free, but others were queued first: they go first
            await lease.release()
        if interrupt is not None:
            await interrupt()
        ticket = await self._join(scope)
        has_place()
        try:
            return await self._take_turn(scope, ticket, sink, check_open)
        finally:
            await self._queue.leave(ticket)

    async def _join(self, scope: Scope) -> Ticket:
        try:
            return await self._queue.join(scope.conversation_key, scope.user_key)
        except QueueFull as full:
            if full.per_person:
                raise ConversationBusy(
                    f"You already have {full.waiting} questions waiting here; I'll answer "
                    "those first, then ask again."
                ) from None
            raise ConversationBusy(
                f"{full.waiting} questions are already waiting here; ask again once some "
                "are answered."
            ) from None

    async def _take_turn(
        self, scope: Scope, ticket: Ticket, sink: ReplySink, check_open: Callable[[], None]
    ) -> Lease:
        shown: int | None = None
        while True:
            check_open()
            if sink.abandoned:
                raise GenerationFailed("the question can no longer be answered here")
            ahead = await self._queue.ahead(ticket)
            if ahead < 0:  # the ticket expired (this process stalled): queue again
                await self._queue.leave(ticket)
                ticket = await self._join(scope)
                continue
            if ahead == 0:
                lease = await self._locks.acquire(scope.conversation_key, scope.user_key)
                if lease is not None:
                    return lease
            position = ahead + 1  # the answer being written goes first
            if position != shown:
                if shown is None:
                    await sink.start()
                await sink.queued(position)
                shown = position
            await asyncio.sleep(QUEUE_POLL_S)
