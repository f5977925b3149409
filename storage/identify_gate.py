"""Turns to start a gateway session, shared by every process of one bot through Redis.

Discord lets a bot start (IDENTIFY) at most `max_concurrency` sessions per 5 s: one per
bucket, a shard's bucket being `shard_id % max_concurrency`, counted over all the bot's
connections wherever they run. An IDENTIFY beyond that is refused, and the shard has to
start over. Each process alone cannot know when another one identified, so a turn is a
key per bucket set with NX and an expiry of the window: whoever sets it may identify
now, the others wait until it expires. The expiry runs on Redis's clock, the same for
every process.
"""

from __future__ import annotations

import asyncio
import random

import redis.asyncio as aioredis

from storage.leases import milliseconds

# Discord's window for `max_concurrency` IDENTIFYs per bucket.
IDENTIFY_WINDOW_S = 5.0
# Between taking a turn and Discord receiving the IDENTIFY lie a send and the network;
# the next turn in the bucket starts this much later, so the two never land within
# one window at Discord.
SEND_MARGIN_S = 0.25
# A waiter looks again this soon at the latest, in case the key vanished early (a flush).
_MAX_POLL_S = 1.0


class IdentifyGate:
    """One bot's identify turns: `await gate.wait_turn(shard_id)` before each IDENTIFY."""

    def __init__(
        self,
        redis: aioredis.Redis,
        name: str,
        max_concurrency: int = 1,
        *,
        window_s: float = IDENTIFY_WINDOW_S,
        margin_s: float = SEND_MARGIN_S,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency is at least 1 (Discord's session_start_limit)")
        if not window_s > 0:
            raise ValueError("the identify window must be positive")
        self._redis = redis
        self.name = name
        self.max_concurrency = max_concurrency
        self.window_s = window_s
        self._hold_ms = milliseconds(window_s + margin_s)

    def bucket(self, shard_id: int) -> int:
        return shard_id % self.max_concurrency

    def key(self, shard_id: int) -> str:
        return f"{self.name}:identify:{self.bucket(shard_id)}"

    async def wait_turn(self, shard_id: int) -> None:
        """Return once `shard_id` may IDENTIFY: no other session of its bucket started
        within the window, in this process or another."""
        key = self.key(shard_id)
        while not await self._redis.set(key, str(shard_id), nx=True, px=self._hold_ms):
            left_ms = await self._redis.pttl(key)
            # Jitter: the waiters of one bucket do not all ask again at the same instant.
            wait_s = max(left_ms, 1) / 1000 + random.uniform(0.0, 0.02)
            await asyncio.sleep(min(wait_s, _MAX_POLL_S))
