"""Tokens used per day, per person and per community, counted in Redis.

Every bot process adds what its answers used (prompt plus completion, as the model server
reported them) to the same counters, so a daily budget holds however many processes
serve. Days are UTC days: a counter's key names its day, so the budget resets at
midnight UTC without anyone clearing anything, and old days expire on their own.
Keys are built from the caller's identifiers and never used as patterns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis.asyncio as aioredis

TOKENS_PREFIX = "tokens:"
# Long enough to show yesterday's use, short enough that old days do not pile up.
_KEEP_S = 3 * 24 * 3600

Clock = Callable[[], float]  # seconds since the epoch


@dataclass(frozen=True)
class DailyUse:
    person: int
    community: int
    resets_in_s: float  # until the next UTC midnight


class TokenBudget:
    def __init__(self, redis: aioredis.Redis, clock: Clock = time.time) -> None:
        self._redis = redis
        self._clock = clock

    def _day(self) -> str:
        return datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%d")

    def resets_in_s(self) -> float:
        now = datetime.fromtimestamp(self._clock(), UTC)
        midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
        return (midnight - now).total_seconds()

    def _key(self, owner: str) -> str:
        return f"{TOKENS_PREFIX}{self._day()}:{owner}"

    def _people_key(self, community: str) -> str:
        return f"{TOKENS_PREFIX}{self._day()}:{community}:people"

    async def used(self, person: str, community: str) -> DailyUse:
        person_used, community_used = await self._redis.mget(
            [self._key(person), self._key(community)]
        )
        return DailyUse(int(person_used or 0), int(community_used or 0), self.resets_in_s())

    async def add(self, person: str, community: str, tokens: int) -> None:
        """Count `tokens` for `person` and their `community` today."""
        if tokens <= 0:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            for key in (self._key(person), self._key(community)):
                pipe.incrby(key, tokens)
                pipe.expire(key, _KEEP_S)
            people = self._people_key(community)
            pipe.zincrby(people, tokens, person)
            pipe.expire(people, _KEEP_S)
            await pipe.execute()

    async def top(self, community: str, count: int = 5) -> list[tuple[str, int]]:
        """The people of `community` who used the most tokens today, most first."""
        ranked = await self._redis.zrevrange(
            self._people_key(community), 0, count - 1, withscores=True
        )
        return [(str(pair[0]), int(pair[1])) for pair in ranked]
