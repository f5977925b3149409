"""Sliding-window rate limits in Redis, shared by every process of the bot.

A fixed window (a counter reset each minute) lets a burst of twice the limit through
at the window's edge; a sliding window does not. Each key is a sorted set of hit times;
one Lua script trims hits older than the window, counts the rest and records the new
hit only when it is allowed, so concurrent callers on several hosts cannot overshoot.
Time comes from the Redis server's clock, so the hosts' clocks need not agree.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

QUOTA_PREFIX = "quota:"

# KEYS: the hit set. ARGV: window (µs), limit, a unique suffix for the hit's member.
# Returns {allowed (0/1), remaining, retry_after (µs)}. Times are integer microseconds,
# exact in Lua's doubles for the next few centuries.
_HIT_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
-- A hit at time h counts while h > now - window.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
if used < limit then
  redis.call('ZADD', KEYS[1], now, t[1] .. '.' .. t[2] .. ':' .. ARGV[3])
  -- Once the newest hit leaves the window the set is empty: let Redis drop it.
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
  return {1, limit - used - 1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, 0, tonumber(oldest[2]) + window - now}
"""


@dataclass(frozen=True)
class RateDecision:
    """Whether one hit is allowed; when refused, how long until the next one would be."""

    allowed: bool
    remaining: int  # hits still allowed in the window after this one
    retry_after_s: float  # 0 when allowed; > 0 when refused


class RateLimiter:
    """Counts hits per key over a sliding window; keys are the caller's (user, server...)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._hit = redis.register_script(_HIT_SCRIPT)

    async def hit(self, key: str, limit: int, window_s: float) -> RateDecision:
        """Record one hit on `key` if fewer than `limit` hits fell in the last `window_s`."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1 (got {limit})")
        if not window_s > 0 or not math.isfinite(window_s):
            raise ValueError(f"window_s must be a positive number of seconds (got {window_s})")
        window_us = max(1000, math.ceil(window_s * 1_000_000))  # PEXPIRE needs >= 1 ms
        allowed, remaining, retry_us = await self._hit(
            keys=[f"{QUOTA_PREFIX}{key}"],
            # Hits in the same microsecond (other processes) need distinct members.
            args=[window_us, limit, secrets.token_hex(8)],
        )
        return RateDecision(
            allowed=bool(allowed),
            remaining=int(remaining),
            retry_after_s=int(retry_us) / 1_000_000,
        )

    async def reset(self, key: str) -> None:
        """Forget every hit on `key` (an operator lifting a limit early)."""
        await self._redis.delete(f"{QUOTA_PREFIX}{key}")
