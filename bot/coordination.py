"""What lets several bot processes serve one bot together: shared state in one Redis.

* `once(source, event_id, payload)`: each platform event is handled by one process,
  once, even when the platform delivers it again or two processes see it
  (`storage.intake_claims`). While a process handles it, the claim's lease is
  refreshed; at the end it is marked done. A process that dies leaves a lease that runs
  out: `recover` (run by every process) then takes the event over from its payload and
  handles it again, and so does a later delivery of it.
* `track_reply(reply)`: the reply to the event being handled is journalled under its
  claim (`bot.reply_journal`), so the process that takes over a dead one's event
  finishes the same messages or marks them interrupted before answering again.
* `pacer(...)`: call windows counted in Redis (`bot.delivery.pacing.SharedPacer`), so
  every process together stays within a platform's limits.
* `role(name)`: a lease held by one process at a time (polling Telegram, registering
  Discord's slash commands), taken over by a standby when its holder dies.

An adapter given no `Coordination` (tests of one process, no Redis) handles every event
it receives and paces in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.delivery.pacing import CallWindow, Clock, MonotonicClock, Pacer, Pacing, SharedPacer
from bot.delivery.stream import StreamingReply
from bot.delivery.transport import Handle
from bot.reply_journal import JournalTracker, ReplyJournal, current_tracker
from bot.turn_queue import tell_when_in_line
from storage.call_windows import RedisCallWindows, WindowSpec
from storage.intake_claims import Claim, ClaimState, IntakeClaims
from storage.leases import RoleLease
from storage.reply_journal import ReplyJournalStore, journal_key

log = logging.getLogger(__name__)


class _Handling:
    """The claim the current task is handling, so that its reply is journalled under it
    and marks it done the moment the final text is shown (`track_reply`), not only once
    the handler returns."""

    def __init__(self, claims: IntakeClaims, journal: ReplyJournal, claim: Claim) -> None:
        self.claims = claims
        self.journal = journal
        self.claim = claim
        self.tracker: JournalTracker | None = None  # the journal of its reply
        self.finishing: list[asyncio.Task[None]] = []

    @property
    def again(self) -> bool:
        """Its reply was ended by a restart: the event is to be handled again."""
        return self.tracker is not None and self.tracker.again

    def finish_when(self, delivered: asyncio.Event) -> None:
        async def finish() -> None:
            await delivered.wait()
            if not self.again and await self.claims.finish(self.claim):
                await self.drop_journal()

        self.finishing.append(asyncio.create_task(finish()))

    async def drop_journal(self) -> None:
        if self.tracker is not None:
            await self.tracker.drop()


_handled: contextvars.ContextVar[_Handling | None] = contextvars.ContextVar(
    "handled_claim", default=None
)


class Coordination:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        claim_lease_s: float = 10.0,
        role_ttl_s: float = 6.0,
        journal: ReplyJournal | None = None,
    ) -> None:
        self.redis = redis
        self.claims = IntakeClaims(redis, lease_s=claim_lease_s)
        # Without the pool's outputs, a cut reply is marked interrupted and answered again.
        self.journal = journal or ReplyJournal(ReplyJournalStore(redis))
        self.windows = RedisCallWindows(redis)
        self.role_ttl_s = role_ttl_s

    @asynccontextmanager
    async def once(
        self, source: str, event_id: str | int, payload: str = ""
    ) -> AsyncIterator[bool]:
        """Claim an event; yields True when this process is to handle it (False: it was
        handled, by this process or another). With a `payload`, a process that dies
        while handling leaves the event for another to take over (`recover`)."""
        claim = await self.claims.claim(source, event_id, payload)
        while claim.state is ClaimState.BUSY:
            # Another process is on it. Look again when its lease would end: if it died
            # meanwhile, this delivery is the one that gets the event handled.
            await asyncio.sleep(max(claim.retry_in_s, 0.05))
            claim = await self.claims.claim(source, event_id, payload)
        if claim.state is ClaimState.DONE:
            log.info("%s %s was handled already; not again", source, event_id)
            yield False
            return
        async with self._handling(claim):
            yield True

    @asynccontextmanager
    async def _handling(self, claim: Claim) -> AsyncIterator[None]:
        """Hold `claim` while its event is handled. Handling that ends in an error still
        marks the event done (handling it again would fail again, or answer twice);
        handling cancelled (the process is stopping) gives the claim up, to be handled
        again by a process still running or after the restart; so does a reply ended by
        the restart (`answer_again_after_restart`). A cancelled reply's journal stays, for
        the next handler to mark or finish its messages."""
        keeper = asyncio.create_task(
            self._keep_claim(claim, asyncio.current_task()), name=f"claim:{claim.event_id}"
        )
        cancelled = False
        handling = _Handling(self.claims, self.journal, claim)
        handled = _handled.set(handling)
        try:
            yield
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            _handled.reset(handled)
            for task in (keeper, *handling.finishing):
                task.cancel()
            await asyncio.gather(keeper, *handling.finishing, return_exceptions=True)
            if cancelled:
                await asyncio.shield(self.claims.release(claim))
            elif handling.again:
                await asyncio.shield(handling.drop_journal())
                await asyncio.shield(self.claims.release(claim))
            elif await asyncio.shield(self.claims.finish(claim)):
                await asyncio.shield(handling.drop_journal())

    async def _keep_claim(self, claim: Claim, handler: asyncio.Task[Any] | None) -> None:
        """Refresh the claim while its event is handled. A claim that ran out meanwhile (this
        process stalled past its lease) may be another process's now, which answers the
        event from the journal: this one stops answering, so as not to answer twice."""
        while True:
            await asyncio.sleep(self.claims.lease_s / 4)
            if not await self.claims.refresh(claim):
                log.warning(
                    "the claim on %s ran out while it was being handled; leaving it to the "
                    "process that takes it over",
                    claim.key,
                )
                if handler is not None:
                    handler.cancel()
                return

    async def recover(
        self,
        source: str,
        handle: Callable[[str], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
        stopping: asyncio.Event,
        lane_of: Callable[[str], str] | None = None,
    ) -> None:
        """Until `stopping`: take over the events of `source` whose holder died before
        handling them, and handle each (`handle(payload)`, run by `spawn`). Events of one
        lane (`lane_of(payload)`: a chat, a channel) are handled in the order they came,
        each question taking its place in its conversation's queue before the next (a dead
        process often leaves a chat's next questions queued); lanes go side by side."""
        interval = self.claims.lease_s / 3
        while not stopping.is_set():
            try:
                taken = await self.claims.take_over(source)
            except (RedisError, OSError) as exc:
                log.warning("could not look for events to take over: %s", exc)
                taken = []
            lanes: dict[str, list[tuple[Claim, str]]] = {}
            for claim, payload in sorted(taken, key=lambda item: _arrival(item[0].event_id)):
                log.warning(
                    "handling %s %s, left unfinished by another process", source, claim.event_id
                )
                lane = _lane(lane_of, payload) or claim.event_id
                lanes.setdefault(lane, []).append((claim, payload))
            for events in lanes.values():
                spawn(self._recover_in_order(events, handle, spawn))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), interval)

    async def _recover_in_order(
        self,
        events: list[tuple[Claim, str]],
        handle: Callable[[str], Awaitable[None]],
        spawn: Callable[[Coroutine[Any, Any, None]], None],
    ) -> None:
        for claim, payload in events:
            in_line = asyncio.Event()
            spawn(self._recovered(claim, payload, handle, in_line))
            # Bounded: the events after it hold claims that are not refreshed yet.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(in_line.wait(), self.claims.lease_s / 4)

    async def _recovered(
        self,
        claim: Claim,
        payload: str,
        handle: Callable[[str], Awaitable[None]],
        in_line: asyncio.Event,
    ) -> None:
        tell_when_in_line(in_line)
        try:
            async with self._handling(claim):
                try:
                    await handle(payload)
                except Exception:  # one event must not stop the others being recovered
                    log.exception("handling a recovered %s event failed", claim.source)
        finally:
            in_line.set()

    def pacer(
        self,
        name: str,
        calls: int,
        window_s: float,
        clock: Clock,
        overall: WindowSpec | None = None,
    ) -> SharedPacer:
        return SharedPacer(self.windows, name, calls, window_s, clock, overall)

    def role(self, name: str) -> RoleLease:
        return RoleLease(self.redis, f"role:{name}", self.role_ttl_s)


def _lane(lane_of: Callable[[str], str] | None, payload: str) -> str:
    if lane_of is None:
        return ""
    try:
        return lane_of(payload)
    except (ValueError, KeyError, TypeError):  # an odd payload: handled on its own
        return ""


def _arrival(event_id: str) -> tuple[int, str]:
    """Platform event ids grow with time (Telegram update ids, Discord snowflakes)."""
    return (int(event_id), "") if event_id.isdigit() else (0, event_id)


def pacers(
    coordination: Coordination | None,
    name: str,
    clock: Clock | None,
    overall_calls: int,
    windows: dict[str, tuple[int, float]],
) -> dict[str, Pacing]:
    """One pacer per kind of destination (`windows`: kind -> (calls, window_s)), all within
    one bot-wide window of `overall_calls` a second (the platform's limit): counted in
    Redis when several processes may deliver for the bot (`coordination`), else in this
    process."""
    clock = clock or MonotonicClock()
    # A sixth of the limit is kept in reserve: calls granted within one second can reach
    # the platform bunched up with the next second's when a busy process is slow to send.
    overall_calls = max(1, overall_calls * 5 // 6)
    if coordination is not None:
        overall_spec = WindowSpec(f"pace:{name}", overall_calls, 1.0)
        return {
            kind: coordination.pacer(f"pace:{name}:{kind}", calls, window_s, clock, overall_spec)
            for kind, (calls, window_s) in windows.items()
        }
    overall = CallWindow(overall_calls, 1.0, clock)
    return {
        kind: Pacer(calls, window_s, clock, overall) for kind, (calls, window_s) in windows.items()
    }


async def track_reply(reply: StreamingReply[Handle]) -> StreamingReply[Handle] | None:
    """Journal `reply`, the reply to the event being handled, and mark the event done as
    soon as its final text is shown (a process killed after that but before its handler
    returns must not leave the event to be answered a second time).

    When a process that died left a reply to this event unfinished, that reply is
    finished from the pool's output (None: nothing more to do), or marked interrupted;
    the reply to answer into is returned."""
    handling = _handled.get()
    if handling is None:
        return reply
    key = journal_key(handling.claim.source, handling.claim.event_id)
    try:
        answer_in = await handling.journal.resume(key, reply)
    except (RedisError, OSError) as exc:  # without the journal, still answer
        log.warning("could not read the reply journal of %s: %s", key, exc)
        answer_in = reply
    handling.tracker = current_tracker()
    handling.finish_when((answer_in or reply).delivered)
    return answer_in


@asynccontextmanager
async def handle_once(
    coordination: Coordination | None, source: str, event_id: str | int, payload: str = ""
) -> AsyncIterator[bool]:
    """`Coordination.once`, or True when this process serves alone."""
    if coordination is None:
        yield True
        return
    async with coordination.once(source, event_id, payload) as mine:
        yield mine
