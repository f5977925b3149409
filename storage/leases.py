"""Roles that exactly one process holds at a time, across every process on one Redis.

A role (polling Telegram for updates, registering Discord's slash commands) is a key
holding its holder's random token with an expiry. The holder refreshes it well within
the expiry; a holder that dies stops refreshing, the key expires, and a standby that
keeps trying takes the role over. Refresh and release compare the token first, so a
holder whose lease ran out never extends or frees the new holder's.
"""

from __future__ import annotations

import asyncio
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress

import redis.asyncio as aioredis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# KEYS: key. ARGV: token, ttl (ms). Extends the lease only while it is still ours.
REFRESH_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: key. ARGV: token. Frees the lease only while it is still ours.
RELEASE_IF_HELD = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def milliseconds(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class RoleLease:
    """One role's lease, as seen by one would-be holder (one process)."""

    def __init__(self, redis: aioredis.Redis, key: str, ttl_s: float = 10.0) -> None:
        if not ttl_s > 0:
            raise ValueError("a lease needs a positive ttl")
        self._redis = redis
        self.key = key
        self.ttl_s = ttl_s
        self.token = secrets.token_hex(16)
        self._refresh = redis.register_script(REFRESH_IF_HELD)
        self._release = redis.register_script(RELEASE_IF_HELD)

    async def try_acquire(self) -> bool:
        """Take the role if nobody holds it (or this holder already does)."""
        taken = await self._redis.set(self.key, self.token, nx=True, px=milliseconds(self.ttl_s))
        return bool(taken) or await self.refresh()

    async def refresh(self) -> bool:
        """Extend the lease; False when it is no longer ours (it expired, another took it)."""
        return bool(
            await self._refresh(keys=[self.key], args=[self.token, milliseconds(self.ttl_s)])
        )

    async def release(self) -> None:
        await self._release(keys=[self.key], args=[self.token])

    async def holder(self) -> str | None:
        """The token of the current holder, if any."""
        value = await self._redis.get(self.key)
        return value.decode() if isinstance(value, bytes) else value

    @asynccontextmanager
    async def held(self, stopping: asyncio.Event) -> AsyncIterator[asyncio.Event]:
        """Wait until the role is ours (or `stopping` is set), then hold it while in the block.

        Yields an event that is set when the role is lost (the lease could not be
        refreshed in time: Redis unreachable, or this process stalled past the ttl); the
        holder must then stop acting in the role. The role is released on the way out.
        """
        interval = self.ttl_s / 3
        while not stopping.is_set() and not await self.try_acquire():
            await _wait(stopping, interval)
        lost = asyncio.Event()
        if stopping.is_set():
            lost.set()
            yield lost
            return
        keeper = asyncio.create_task(self._keep(lost, interval), name=f"lease:{self.key}")
        try:
            yield lost
        finally:
            keeper.cancel()
            await asyncio.gather(keeper, return_exceptions=True)
            await self.release()

    async def _keep(self, lost: asyncio.Event, interval: float) -> None:
        refreshed_at = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            try:
                if not await self.refresh():
                    log.warning("lost the lease on %s; another process holds it now", self.key)
                    break
                refreshed_at = time.monotonic()
            except (RedisError, OSError) as exc:
                # A hiccup is retried; the role is given up only once the lease may have
                # expired, since another process may hold it from then on.
                log.warning("could not refresh the lease on %s: %s", self.key, exc)
                if time.monotonic() - refreshed_at > self.ttl_s - interval:
                    break
        lost.set()


async def _wait(event: asyncio.Event, seconds: float) -> None:
    with suppress(TimeoutError):
        await asyncio.wait_for(event.wait(), seconds)
