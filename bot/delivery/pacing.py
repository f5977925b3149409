"""Pacing: how many platform calls one destination may make, and when.

Platforms throttle per chat or channel (Telegram: about 20 messages a minute in a group;
Discord: 5 message calls per 5 s per channel) and answer 429 with a `retry_after` when
a bot goes faster. Every reply streaming into one destination shares that destination's
`CallWindow`, so two conversations in one channel cannot together exceed its budget, and
a 429 seen by one pauses all of them. The clock is injected so tests run on a fake one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Protocol

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


class CallWindow:
    """A sliding window of calls to one destination, plus a pause after a 429.

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

    def free_calls(self) -> int:
        """Calls that may be made now without waiting (0 while paused by a 429)."""
        now = self._clock.now()
        if now < self._paused_until:
            return 0
        self._forget_old(now)
        return self._calls - len(self._times)

    def wait_s(self, keep_free: int = 0) -> float:
        """Seconds until a call may be made leaving `keep_free` calls of the window unused."""
        own = self._own_wait_s(keep_free)
        return max(own, self._overall.wait_s()) if self._overall is not None else own

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

    def try_take(self, keep_free: int = 0) -> bool:
        """Record a call if one may be made now leaving `keep_free` unused."""
        if self.wait_s(keep_free) > 0:
            return False
        self._times.append(self._clock.now())
        if self._overall is not None:
            self._overall.try_take()
        return True

    async def take(self) -> None:
        """Wait until a call may be made, then record it."""
        while not self.try_take():
            await self._clock.sleep(self.wait_s())

    def note_call(self, at: float) -> None:
        """Count a call this window did not grant, made (or to be made) at clock time `at`:
        a platform library's own retry of a refused call, for one."""
        self._times.append(at)
        if len(self._times) > 1 and self._times[-2] > at:
            self._times = deque(sorted(self._times))

    def pause(self, seconds: float) -> None:
        """The platform said "retry after `seconds`": no call to this destination until then."""
        self._paused_until = max(self._paused_until, self._clock.now() + seconds)


class Pacer:
    """The call windows of every destination one platform delivers to, optionally within
    one `overall` window for the whole bot (Telegram: about 30 messages a second)."""

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
