"""ConversationLocks against a real Redis: one lease per conversation, cancellation by flag."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from storage.conversation_lock import ConversationLocks


async def test_second_acquire_waits_for_release(redis_client: aioredis.Redis) -> None:
    locks = ConversationLocks(redis_client)
    lease = await locks.acquire("d:1:2:-")
    assert lease is not None
    assert await locks.acquire("d:1:2:-") is None
    assert await locks.acquire("d:1:3:-") is not None  # another conversation is free

    assert await lease.release()
    assert not await lease.release()  # already released: nothing to free
    assert await locks.acquire("d:1:2:-") is not None


async def test_lease_as_context_manager_releases_on_error(redis_client: aioredis.Redis) -> None:
    locks = ConversationLocks(redis_client)
    lease = await locks.acquire("c")
    assert lease is not None
    try:
        async with lease:
            assert await locks.acquire("c") is None
            raise RuntimeError("generation failed")
    except RuntimeError:
        pass
    assert await locks.acquire("c") is not None


async def test_expired_lease_does_not_release_the_next_holder(
    redis_client: aioredis.Redis,
) -> None:
    locks = ConversationLocks(redis_client, ttl_s=0.1)
    old = await locks.acquire("c")
    assert old is not None
    await asyncio.sleep(0.2)
    new = await ConversationLocks(redis_client, ttl_s=30).acquire("c")
    assert new is not None

    assert not await old.release()
    assert not await old.refresh()
    assert await locks.acquire("c") is None  # the new holder still holds it
    assert await new.refresh()
    assert await new.release()


async def test_refresh_extends_the_lease(redis_client: aioredis.Redis) -> None:
    locks = ConversationLocks(redis_client, ttl_s=0.3)
    lease = await locks.acquire("c")
    assert lease is not None
    for _ in range(4):
        await asyncio.sleep(0.15)
        assert await lease.refresh()
    assert await locks.acquire("c") is None  # held for 0.6 s on a 0.3 s ttl


async def test_concurrent_acquires_yield_one_lease(redis_client: aioredis.Redis) -> None:
    locks = ConversationLocks(redis_client)
    leases = await asyncio.gather(*(locks.acquire("c") for _ in range(10)))
    assert sum(lease is not None for lease in leases) == 1


async def test_cancel_requests(redis_client: aioredis.Redis) -> None:
    locks = ConversationLocks(redis_client)
    assert not await locks.request_cancel("c")  # nothing in flight
    assert not await locks.cancel_requested("c")

    lease = await locks.acquire("c")
    assert lease is not None
    assert not await lease.cancel_requested()
    # Another process (another client) asks to stop.
    assert await ConversationLocks(redis_client).request_cancel("c")
    assert await locks.cancel_requested("c")
    assert await lease.cancel_requested()
    assert not await locks.cancel_requested("other")

    await lease.release()
    assert not await locks.cancel_requested("c")


async def test_a_new_lease_clears_a_stale_cancel_flag(redis_client: aioredis.Redis) -> None:
    locks = ConversationLocks(redis_client, ttl_s=0.1, cancel_ttl_s=30)
    crashed = await locks.acquire("c")
    assert crashed is not None
    assert await locks.request_cancel("c")
    await asyncio.sleep(0.2)  # the holder died without releasing; its lease expired
    assert await locks.cancel_requested("c")  # the flag outlived it

    fresh = await locks.acquire("c")
    assert fresh is not None
    assert not await fresh.cancel_requested()
