"""A role is held by one process at a time; a standby takes it over when the holder dies."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from storage.leases import RoleLease


async def test_one_holder_at_a_time_and_a_standby_takes_over_on_release(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    owner = RoleLease(redis_client, "role:poll", ttl_s=0.6)
    standby = RoleLease(other_process, "role:poll", ttl_s=0.6)
    stopping = asyncio.Event()
    async with owner.held(stopping) as lost:
        assert await owner.holder() == owner.token
        assert not await standby.try_acquire()
        waiting = asyncio.create_task(standby.held(stopping).__aenter__())
        await asyncio.sleep(1.0)  # several ttls: the owner keeps refreshing
        assert not waiting.done() and not lost.is_set()
    standby_lost = await asyncio.wait_for(waiting, 5)
    assert await standby.holder() == standby.token and not standby_lost.is_set()
    await standby.release()


async def test_a_holder_that_stops_refreshing_loses_the_role(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    died = RoleLease(redis_client, "role:poll", ttl_s=0.3)
    assert await died.try_acquire()  # and then never refreshes: killed
    standby = RoleLease(other_process, "role:poll", ttl_s=0.3)
    async with asyncio.timeout(5), standby.held(asyncio.Event()) as lost:
        assert await standby.holder() == standby.token
        assert not await died.refresh()  # the old holder cannot take it back
        await died.release()  # nor free it
        assert await standby.holder() == standby.token
        assert not lost.is_set()


async def test_the_holder_learns_when_another_took_the_role(
    redis_client: aioredis.Redis,
) -> None:
    lease = RoleLease(redis_client, "role:poll", ttl_s=0.3)
    async with lease.held(asyncio.Event()) as lost:
        await redis_client.set("role:poll", "someone else")  # its lease ran out meanwhile
        await asyncio.wait_for(lost.wait(), 5)
    assert await redis_client.get("role:poll") == "someone else"  # not freed by the loser


async def test_waiting_for_a_role_ends_when_stopping(redis_client: aioredis.Redis) -> None:
    assert await RoleLease(redis_client, "role:poll", ttl_s=30).try_acquire()
    stopping = asyncio.Event()
    standby = RoleLease(redis_client, "role:poll", ttl_s=30)
    waiting = asyncio.create_task(standby.held(stopping).__aenter__())
    await asyncio.sleep(0.1)
    stopping.set()
    lost = await asyncio.wait_for(waiting, 15)
    assert lost.is_set()  # it never held the role
