"""An event is claimed once across processes; a claim whose holder died can be taken."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from storage.intake_claims import ClaimState, IntakeClaims


async def test_an_event_seen_by_two_processes_is_claimed_by_one(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    first, second = IntakeClaims(redis_client), IntakeClaims(other_process)
    results = await asyncio.gather(
        *(claims.claim("telegram:777:update", 41) for claims in (first, second) * 10)
    )
    assert [r.state for r in results].count(ClaimState.CLAIMED) == 1
    busy = [r for r in results if r.state is ClaimState.BUSY]
    assert len(busy) == 19 and all(0 < r.retry_in_s <= first.lease_s for r in busy)


async def test_a_handled_event_delivered_again_is_done(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    claims = IntakeClaims(redis_client, done_ttl_s=60)
    claim = await claims.claim("discord:message", "1234")
    assert claim.state is ClaimState.CLAIMED
    assert await claims.refresh(claim)
    assert await claims.finish(claim)
    again = await IntakeClaims(other_process).claim("discord:message", "1234")
    assert again.state is ClaimState.DONE
    assert 0 < await redis_client.pttl(claim.key) <= 60_000  # remembered for a bounded time
    other = await claims.claim("discord:interaction", "1234")  # another kind, another id space
    assert other.state is ClaimState.CLAIMED


async def test_the_claim_of_a_holder_that_died_expires_and_is_taken_again(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    dead = IntakeClaims(redis_client, lease_s=0.2)
    claim = await dead.claim("telegram:777:update", 7)
    assert claim.state is ClaimState.CLAIMED
    survivor = IntakeClaims(other_process)
    assert (await survivor.claim("telegram:777:update", 7)).state is ClaimState.BUSY
    await asyncio.sleep(0.3)  # the holder never refreshed: it died
    taken = await survivor.claim("telegram:777:update", 7)
    assert taken.state is ClaimState.CLAIMED
    assert not await dead.refresh(claim)  # the old holder cannot extend or finish it now
    assert not await dead.finish(claim)
    assert await survivor.finish(taken)


async def test_a_released_claim_is_claimed_afresh(redis_client: aioredis.Redis) -> None:
    claims = IntakeClaims(redis_client)
    claim = await claims.claim("telegram:777:update", 9)
    await claims.release(claim)
    assert (await claims.claim("telegram:777:update", 9)).state is ClaimState.CLAIMED


async def test_an_event_left_by_a_dead_holder_is_taken_over_with_its_payload(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    dead = IntakeClaims(redis_client, lease_s=0.2)
    assert (await dead.claim("telegram:777:update", 11, payload='{"n": 11}')).state is (
        ClaimState.CLAIMED
    )
    finished = await dead.claim("telegram:777:update", 12, payload='{"n": 12}')
    assert await dead.finish(finished)
    survivor = IntakeClaims(other_process, lease_s=5)
    assert await survivor.take_over("telegram:777:update") == []  # the holder may be alive
    await asyncio.sleep(0.3)
    (taken,) = await survivor.take_over("telegram:777:update")
    claim, payload = taken
    assert (claim.event_id, payload) == ("11", '{"n": 11}')
    assert await survivor.take_over("telegram:777:update") == []  # taken once
    assert (await dead.claim("telegram:777:update", 11)).state is ClaimState.BUSY
    assert await survivor.finish(claim)
    assert await redis_client.zcard("claims:pending:telegram:777:update") == 0
    assert await redis_client.hlen("claims:payload:telegram:777:update") == 0


async def test_an_event_given_up_while_stopping_is_taken_over_at_once(
    redis_client: aioredis.Redis,
) -> None:
    claims = IntakeClaims(redis_client, lease_s=30)
    claim = await claims.claim("discord:message", "77", payload="{}")
    await claims.release(claim)
    ((taken, payload),) = await claims.take_over("discord:message")
    assert (taken.event_id, payload) == ("77", "{}")


async def test_a_late_holder_keeps_a_claim_nobody_took_over(redis_client: aioredis.Redis) -> None:
    # Its process stalled past the lease, but no other process claimed the event meanwhile:
    # the holder goes on (and its answer counts), instead of the event being answered twice.
    claims = IntakeClaims(redis_client, lease_s=0.2)
    claim = await claims.claim("telegram:777:update", 21, payload='{"n": 21}')
    await asyncio.sleep(0.3)
    assert await claims.refresh(claim)
    assert (await claims.claim("telegram:777:update", 21)).state is ClaimState.BUSY
    await asyncio.sleep(0.3)
    assert await claims.finish(claim)
    assert await claims.take_over("telegram:777:update") == []
    assert (await claims.claim("telegram:777:update", 21)).state is ClaimState.DONE
