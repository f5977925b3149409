"""RateLimiter against a real Redis: a sliding window that holds under concurrency."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from storage.quotas import RateLimiter


async def test_allows_limit_hits_then_refuses(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    decisions = [await limiter.hit("user:1", limit=3, window_s=60) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, True]
    assert [d.remaining for d in decisions] == [2, 1, 0]
    assert all(d.retry_after_s == 0 for d in decisions)

    refused = await limiter.hit("user:1", limit=3, window_s=60)
    assert not refused.allowed
    assert refused.remaining == 0
    assert 0 < refused.retry_after_s <= 60
    # A refused hit is not recorded: the window still holds exactly the 3 allowed ones.
    assert await redis_client.zcard("quota:user:1") == 3
    ttl_ms = await redis_client.pttl("quota:user:1")
    assert 0 < ttl_ms <= 60_000


async def test_keys_are_independent(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    assert (await limiter.hit("user:a", 1, 60)).allowed
    assert not (await limiter.hit("user:a", 1, 60)).allowed
    assert (await limiter.hit("user:b", 1, 60)).allowed


async def test_hits_are_allowed_again_once_they_leave_the_window(
    redis_client: aioredis.Redis,
) -> None:
    limiter = RateLimiter(redis_client)
    assert (await limiter.hit("k", 2, 0.3)).allowed
    await asyncio.sleep(0.15)
    assert (await limiter.hit("k", 2, 0.3)).allowed
    refused = await limiter.hit("k", 2, 0.3)
    assert not refused.allowed
    # The oldest hit is ~0.15 s old: it leaves the window in ~0.15 s, not a whole window.
    assert 0 < refused.retry_after_s < 0.3

    await asyncio.sleep(refused.retry_after_s + 0.02)
    # Only the first hit left the window: one slot is free, the second hit still counts.
    assert (await limiter.hit("k", 2, 0.3)).allowed
    assert not (await limiter.hit("k", 2, 0.3)).allowed

    await asyncio.sleep(0.35)
    again = await limiter.hit("k", 2, 0.3)
    assert again.allowed and again.remaining == 1


async def test_concurrent_hits_allow_exactly_the_limit(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    decisions = await asyncio.gather(*(limiter.hit("burst", 5, 60) for _ in range(20)))
    assert sum(d.allowed for d in decisions) == 5
    assert sorted(d.remaining for d in decisions if d.allowed) == [0, 1, 2, 3, 4]
    assert all(d.retry_after_s > 0 for d in decisions if not d.allowed)


async def test_rejects_meaningless_limits(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    with pytest.raises(ValueError, match="limit"):
        await limiter.hit("k", 0, 60)
    with pytest.raises(ValueError, match="window_s"):
        await limiter.hit("k", 1, 0)


async def test_reset_forgets_hits(redis_client: aioredis.Redis) -> None:
    limiter = RateLimiter(redis_client)
    await limiter.hit("k", 1, 60)
    await limiter.reset("k")
    assert (await limiter.hit("k", 1, 60)).allowed
