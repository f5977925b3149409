"""Sliding windows of calls counted in Redis, shared by every process of one bot.

A platform limits how many calls a bot makes (to one chat, and in all); when several
processes deliver for one bot they must count together. A window is a sorted set of
call times plus a key holding the end of a pause ("retry after N s"). Times are Redis's
own clock (`TIME`), so processes on different hosts read one clock. One script checks a
destination's window and the bot-wide one and takes a call from both at once: two
processes never both take the last call. Keys expire once their calls are out of the
window, so idle destinations cost nothing.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

import redis.asyncio as aioredis

# Shared by the scripts: the server's time in milliseconds, and how long a window's key
# must live to keep its latest call (some are noted ahead of time) within the window.
_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function keep_for(zset, window)
  local last = redis.call('ZRANGE', zset, -1, -1, 'WITHSCORES')
  local latest = now
  if last[2] and tonumber(last[2]) > now then latest = tonumber(last[2]) end
  redis.call('PEXPIRE', zset, math.ceil(latest - now + window) + 1)
end
"""

# KEYS: per window its sorted set and pause key. ARGV: take (1/0), member, then per window
# its calls, window (ms) and calls to keep free. Returns the milliseconds to wait before
# a call may be made (0: one may be made now, and it was taken when asked).
_TAKE = (
    _PRELUDE
    + """
local wait = 0
for i = 1, #KEYS / 2 do
  local zset, pause = KEYS[2 * i - 1], KEYS[2 * i]
  local calls = tonumber(ARGV[3 * i])
  local window = tonumber(ARGV[3 * i + 1])
  local keep_free = tonumber(ARGV[3 * i + 2])
  redis.call('ZREMRANGEBYSCORE', zset, '-inf', now - window)
  local own = math.max(0, tonumber(redis.call('GET', pause) or '0') - now)
  local count = redis.call('ZCARD', zset)
  local needed = count - (calls - keep_free) + 1
  if needed > count then
    own = own + window  -- keep_free is the whole budget: never within this window
  elseif needed > 0 then
    local oldest = redis.call('ZRANGE', zset, needed - 1, needed - 1, 'WITHSCORES')
    own = math.max(own, tonumber(oldest[2]) + window - now)
  end
  if own > wait then wait = own end
end
if ARGV[1] == '1' and wait <= 0 then
  for i = 1, #KEYS / 2 do
    redis.call('ZADD', KEYS[2 * i - 1], now, ARGV[2])
    keep_for(KEYS[2 * i - 1], tonumber(ARGV[3 * i + 1]))
  end
end
return math.ceil(wait)
"""
)

# KEYS: sorted set. ARGV: offset from now (ms), member, window (ms).
_NOTE = (
    _PRELUDE
    + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[2])
keep_for(KEYS[1], tonumber(ARGV[3]))
return 1
"""
)

# KEYS: pause key. ARGV: pause (ms). A pause is only ever lengthened.
_PAUSE = (
    _PRELUDE
    + """
local until_ms = now + tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') < until_ms then
  redis.call('SET', KEYS[1], until_ms, 'PX', math.ceil(tonumber(ARGV[1])) + 1)
end
return 1
"""
)


@dataclass(frozen=True)
class WindowSpec:
    """One window: at most `calls` calls in any `window_s` seconds, counted under `key`."""

    key: str
    calls: int
    window_s: float

    def __post_init__(self) -> None:
        if self.calls < 1:
            raise ValueError("a window needs a budget of at least one call")

    @property
    def pause_key(self) -> str:
        return f"{self.key}:paused"

    @property
    def window_ms(self) -> int:
        return math.ceil(self.window_s * 1000)


class RedisCallWindows:
    """The windows of one Redis; every operation is one atomic script."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._take = redis.register_script(_TAKE)
        self._note = redis.register_script(_NOTE)
        self._pause = redis.register_script(_PAUSE)

    async def wait_s(self, windows: Sequence[tuple[WindowSpec, int]]) -> float:
        """Seconds until a call may be made in every one of `windows` ((window, calls to
        keep free) pairs)."""
        return await self._run(windows, take=False)

    async def try_take(self, windows: Sequence[tuple[WindowSpec, int]]) -> bool:
        """Record a call in all of `windows` if each allows one now; False otherwise."""
        return await self._run(windows, take=True) <= 0

    async def _run(self, windows: Sequence[tuple[WindowSpec, int]], *, take: bool) -> float:
        keys = [key for spec, _ in windows for key in (spec.key, spec.pause_key)]
        args: list[str | int] = ["1" if take else "0", secrets.token_hex(8)]
        for spec, keep_free in windows:
            args += [spec.calls, spec.window_ms, keep_free]
        waited = await self._take(keys=keys, args=args)
        return int(waited) / 1000

    async def note_call(self, spec: WindowSpec, in_s: float) -> None:
        """Count a call made (or to be made) `in_s` seconds from now that no `try_take`
        granted (a platform library's own retry)."""
        await self._note(
            keys=[spec.key],
            args=[math.ceil(in_s * 1000), secrets.token_hex(8), spec.window_ms],
        )

    async def pause(self, spec: WindowSpec, seconds: float) -> None:
        """No call in `spec` for `seconds` (the platform said "retry after")."""
        await self._pause(keys=[spec.pause_key], args=[max(1, math.ceil(seconds * 1000))])
