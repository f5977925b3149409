"""Handling recorded events lane by lane, in order, shared by every process of a bot.

A webhook process records each event into its lane (`storage.ordered_intake`) and answers
the platform at once; then it wakes the lane here. The process that gets the lane's lease
takes the lane's events one after another, lowest id first, until the lane is empty,
and hands the lane back. Different lanes run side by side. A lane whose holder died
(its lease ran out) or stopped with events left is found by every process's sweep and
taken over by one of them, starting with the event the other had not finished: the
event's claim (`Coordination.once`) keeps it from being answered twice.

`handle(payload)` returning is what lets a lane move on: the caller decides how much of
an event's work must be over by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from storage.ordered_intake import LaneHold, OrderedIntake

log = logging.getLogger(__name__)

Handle = Callable[[str], Awaitable[None]]


class LaneWorkers:
    def __init__(self, intake: OrderedIntake, handle: Handle, stopping: asyncio.Event) -> None:
        self._intake = intake
        self._handle = handle
        self._stopping = stopping
        self._running: dict[str, asyncio.Task[None]] = {}
        # Lanes woken while their worker here was busy: it looks once more before leaving.
        self._woken: set[str] = set()

    @property
    def lanes(self) -> set[str]:
        """The lanes this process is working on now."""
        return set(self._running)

    def wake(self, lane: str) -> None:
        """An event was recorded in `lane`: work on it here unless another process does."""
        if self._stopping.is_set():
            return
        if lane in self._running:
            self._woken.add(lane)
            return
        self._running[lane] = asyncio.create_task(self._work(lane), name=f"lane:{lane}")

    async def run(self) -> None:
        """Until stopping: take over the lanes nobody holds (their holder died, or stopped
        with events left), looking a few times per lease."""
        interval = self._intake.lease_s / 3
        while not self._stopping.is_set():
            try:
                for lane in await self._intake.unheld():
                    self.wake(lane)
            except (RedisError, OSError) as exc:
                log.warning("could not look for lanes to take over: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)

    async def close(self, grace_s: float) -> None:
        """Let the events being handled finish (up to `grace_s`), then cancel the rest:
        their lanes are handed back for another process to go on with."""
        tasks = set(self._running.values())
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    async def _work(self, lane: str) -> None:
        try:
            hold = await self._intake.take(lane)
            if hold is not None:
                await self._drain(hold)
        except (RedisError, OSError) as exc:
            # The lease runs out; a sweep (here or elsewhere) takes the lane up again.
            log.warning("working on lane %s stopped: %s", lane, exc)
        finally:
            del self._running[lane]
            if lane in self._woken:
                self._woken.discard(lane)
                self.wake(lane)

    async def _drain(self, hold: LaneHold) -> None:
        lost = asyncio.Event()
        keeper = asyncio.create_task(self._keep(hold, lost))
        left_empty = False
        try:
            while not self._stopping.is_set() and not lost.is_set():
                self._woken.discard(hold.lane)
                waiting = await hold.head()
                if waiting is None:
                    left_empty = await hold.release_if_empty()
                    if left_empty:
                        return
                    continue
                try:
                    await self._handle(waiting.payload)
                except Exception:  # one event must not stop its lane
                    log.exception("event %s in lane %s failed", waiting.event_id, hold.lane)
                await hold.done(waiting.event_id)
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            if not left_empty:
                with contextlib.suppress(RedisError, OSError):
                    await asyncio.shield(hold.release())

    async def _keep(self, hold: LaneHold, lost: asyncio.Event) -> None:
        interval = self._intake.lease_s / 3
        while True:
            await asyncio.sleep(interval)
            try:
                kept = await hold.refresh()
            except (RedisError, OSError) as exc:
                log.warning("could not refresh the lease on lane %s: %s", hold.lane, exc)
                continue
            if not kept:
                # Another process may hold the lane now: finish this event, take no more.
                log.warning("lost the lease on lane %s", hold.lane)
                lost.set()
                return
