"""One person's quick messages merged into one question.

People often type a question in several short lines. Answering each line on its own
gives several answers racing each other, so the lines one person sends to the bot in one
conversation within `window_s` of each other become one turn: the first message waits
until the person has paused for `window_s`, then carries all the lines; the later ones
are answered by it. Merging happens in the process that receives the messages (a
platform delivers one chat's messages to one process); a burst is bounded in lines and
in how long it may keep growing, so a person who never pauses still gets an answer.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from bot.requests import Quoted

# A burst stops growing after this many lines, or this many windows after it began.
MAX_LINES = 20
MAX_WINDOWS = 4


@dataclass
class _Burst:
    lines: list[str]
    quoted: Quoted | None
    deadline: float
    closes_at: float


@dataclass(frozen=True)
class Merged:
    text: str
    quoted: Quoted | None
    lines: int


class BurstMerger:
    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._open: dict[str, _Burst] = {}

    async def collect(
        self, key: str, text: str, quoted: Quoted | None, window_s: float
    ) -> Merged | None:
        """The merged question once the person paused, for the burst's first message;
        None for a message that joined an open burst (the first one answers it)."""
        now = self._clock()
        burst = self._open.get(key)
        if burst is not None and len(burst.lines) < MAX_LINES and now < burst.closes_at:
            burst.lines.append(text)
            burst.quoted = burst.quoted or quoted
            burst.deadline = min(now + window_s, burst.closes_at)
            return None
        if window_s <= 0:
            return Merged(text, quoted, 1)
        burst = _Burst([text], quoted, now + window_s, now + window_s * MAX_WINDOWS)
        self._open[key] = burst
        try:
            while (remaining := burst.deadline - self._clock()) > 0:
                await self._sleep(remaining)
        finally:
            if self._open.get(key) is burst:
                del self._open[key]
        return Merged("\n".join(burst.lines), burst.quoted, len(burst.lines))
