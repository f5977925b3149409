"""Pacing: how many platform calls one destination may make, and when.

Platforms throttle per chat or channel (Telegram: about 20 messages a minute in a group;
Discord: 5 message calls per 5 s per channel) and answer 429 with a `retry_after` when
a bot goes faster. Every reply streaming into one destination shares that destination's
`CallWindow`, so two conversations in one channel cannot together exceed its budget, and
a 429 seen by one pauses all of them. The clock is injected so tests run on a fake one.

`CallBudget` is what a reply needs of a window. `CallWindow` and `Pacer` count in this
process's memory; `SharedCallWindow` and `SharedPacer` count in Redis
(`storage.call_windows`), so several bot processes delivering for one bot stay together
within its limits.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections import deque
from typing import Protocol

from storage.call_windows import RedisCallWindows, WindowSpec

# Destinations remembered before idle ones are forgotten (a bot in many chats).
_MAX_WINDOWS = 10_000


class Clock(Protocol):
    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    def now(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class CallBudget(ABC):
    """The calls one destination may make: a sliding window, plus a pause after a 429."""

    @abstractmethod
    async def wait_s(self, keep_free: int = 0) -> float:
        """Seconds until a call may be made leaving `keep_free` calls of the window unused."""

    @abstractmethod
    async def try_take(self, keep_free: int = 0) -> bool:
        """Record a call if one may be made now leaving `keep_free` unused."""

    @abstractmethod
    async def note_call(self, at: float) -> None:
        """Count a call this window did not grant, made (or to be made) at clock time `at`:
        a platform library's own retry of a refused call, for one."""

    @abstractmethod
    async def pause(self, seconds: float) -> None:
        """The platform said "retry after `seconds`": no call to this destination until then."""

    @property
    @abstractmethod
    def clock(self) -> Clock: ...

    async def take(self) -> None:
        """Wait until a call may be made, then record it."""
        while not await self.try_take():
            await self.clock.sleep(await self.wait_s())


class CallWindow(CallBudget):
    """A sliding window of calls to one destination counted in this process's memory.

    With `overall`, every call is also counted in that window (the platform's limit for
    the whole bot, across destinations), and may be made only when both allow it.
    """

    def __init__(
        self, calls: int, window_s: float, clock: Clock, overall: CallWindow | None = None
    ) -> None:
        if calls < 1:
            raise ValueError("a destination needs a budget of at least one call")
        self._calls = calls
        self._window_s = window_s
        self._clock = clock
        self._overall = overall
        self._times: deque[float] = deque()
        self._paused_until = 0.0

    def _forget_old(self, now: float) -> None:
        while self._times and self._times[0] <= now - self._window_s:
            self._times.popleft()

    @property
    def clock(self) -> Clock:
        return self._clock

    def free_calls(self) -> int:
        """Calls that may be made now without waiting (0 while paused by a 429)."""
        now = self._clock.now()
        if now < self._paused_until:
            return 0
        self._forget_old(now)
        return self._calls - len(self._times)

    async def wait_s(self, keep_free: int = 0) -> float:
        return self._wait_s(keep_free)

    def _wait_s(self, keep_free: int = 0) -> float:
        own = self._own_wait_s(keep_free)
        return max(own, self._overall._wait_s()) if self._overall is not None else own

    def _own_wait_s(self, keep_free: int) -> float:
        now = self._clock.now()
        self._forget_old(now)
        pause = max(0.0, self._paused_until - now)
        needed = len(self._times) - (self._calls - keep_free) + 1
        if needed <= 0:
            return pause
        if needed > len(self._times):  # keep_free >= budget: never, in this window
            return pause + self._window_s
        return max(pause, self._times[needed - 1] + self._window_s - now)

    async def try_take(self, keep_free: int = 0) -> bool:
        return self._try_take(keep_free)

    def _try_take(self, keep_free: int = 0) -> bool:
        if self._wait_s(keep_free) > 0:
            return False
        self._times.append(self._clock.now())
        if self._overall is not None:
            self._overall._try_take()
        return True

    async def note_call(self, at: float) -> None:
        self._times.append(at)
        if len(self._times) > 1 and self._times[-2] > at:
            self._times = deque(sorted(self._times))

    async def pause(self, seconds: float) -> None:
        self._paused_until = max(self._paused_until, self._clock.now() + seconds)


class SharedCallWindow(CallBudget):
    """A destination's window counted in Redis, within the bot's `overall` one if given:
    every process of the bot that delivers to the destination counts in the same one."""

    def __init__(
        self,
        windows: RedisCallWindows,
        own: WindowSpec,
        clock: Clock,
        overall: WindowSpec | None = None,
    ) -> None:
        self._store = windows
        self._own = own
        self._overall = overall
        self._clock = clock

    @property
    def clock(self) -> Clock:
        return self._clock

    def _with_overall(self, keep_free: int) -> list[tuple[WindowSpec, int]]:
        # Calls kept free for a reply's final text are the destination's: the bot-wide
        # window is taken first come, first served.
        windows = [(self._own, keep_free)]
        return [*windows, (self._overall, 0)] if self._overall is not None else windows

    async def wait_s(self, keep_free: int = 0) -> float:
        return await self._store.wait_s(self._with_overall(keep_free))

    async def try_take(self, keep_free: int = 0) -> bool:
        return await self._store.try_take(self._with_overall(keep_free))

    async def note_call(self, at: float) -> None:
        in_s = at - self._clock.now()
        await self._store.note_call(self._own, in_s)
        if self._overall is not None:
            await self._store.note_call(self._overall, in_s)

    async def pause(self, seconds: float) -> None:
        await self._store.pause(self._own, seconds)


class Pacing(Protocol):
    """The call windows of every destination one platform delivers to."""

    @property
    def clock(self) -> Clock: ...

    def window(self, destination: str) -> CallBudget: ...


class Pacer:
    """The call windows of every destination one platform delivers to, optionally within
    one `overall` window for the whole bot (Telegram: about 30 messages a second),
    counted in this process's memory."""

    def __init__(
        self,
        calls: int,
        window_s: float,
        clock: Clock | None = None,
        overall: CallWindow | None = None,
    ) -> None:
        self.clock: Clock = clock or MonotonicClock()
        self._calls = calls
        self._window_s = window_s
        self._overall = overall
        self._windows: dict[str, CallWindow] = {}

    def window(self, destination: str) -> CallWindow:
        found = self._windows.get(destination)
        if found is None:
            if len(self._windows) >= _MAX_WINDOWS:
                self._forget_idle()
            found = self._windows[destination] = CallWindow(
                self._calls, self._window_s, self.clock, self._overall
            )
        return found

    def _forget_idle(self) -> None:
        # A destination whose window is empty and unpaused has nothing to remember.
        self._windows = {
            key: window
            for key, window in self._windows.items()
            if window.free_calls() < self._calls
        }


class SharedPacer:
    """The call windows of every destination one bot delivers to, counted in Redis under
    `name` (one per bot and kind of destination), within the `overall` window if given."""

    def __init__(
        self,
        windows: RedisCallWindows,
        name: str,
        calls: int,
        window_s: float,
        clock: Clock | None = None,
        overall: WindowSpec | None = None,
    ) -> None:
        if calls < 1:
            raise ValueError("a destination needs a budget of at least one call")
        self.clock: Clock = clock or MonotonicClock()
        self._store = windows
        self._name = name
        self._calls = calls
        self._window_s = window_s
        self._overall = overall

    def window(self, destination: str) -> CallBudget:
        own = WindowSpec(f"{self._name}:{destination}", self._calls, self._window_s)
        return SharedCallWindow(self._store, own, self.clock, self._overall)
