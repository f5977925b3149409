"""Gateway sessions start one per bucket and window, across processes sharing one Redis."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
import redis.asyncio as aioredis

from storage.identify_gate import IdentifyGate

WINDOW_S = 0.4


async def test_one_bucket_takes_turns_across_processes(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    # max_concurrency 1: every shard is in bucket 0, whichever process serves it.
    gates = [
        IdentifyGate(r, "discord:42", 1, window_s=WINDOW_S) for r in (redis_client, other_process)
    ]
    turns: list[float] = []

    async def identify(gate: IdentifyGate, shard_id: int) -> None:
        await gate.wait_turn(shard_id)
        turns.append(time.monotonic())

    await asyncio.wait_for(
        asyncio.gather(*(identify(gates[shard % 2], shard) for shard in range(4))), 20
    )
    turns.sort()
    gaps = [later - earlier for earlier, later in itertools.pairwise(turns)]
    assert len(turns) == 4 and min(gaps) >= WINDOW_S


async def test_shards_of_other_buckets_do_not_wait(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    # A window far longer than the test may take: a shard that waited would time out.
    first = IdentifyGate(redis_client, "discord:42", 2, window_s=60)
    second = IdentifyGate(other_process, "discord:42", 2, window_s=60)
    assert (first.bucket(0), second.bucket(1)) == (0, 1)
    await asyncio.wait_for(asyncio.gather(first.wait_turn(0), second.wait_turn(1)), 10)
    # The next shard of bucket 0 waits for the window; another bot has buckets of its own.
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(second.wait_turn(2), 1.0)
    await asyncio.wait_for(IdentifyGate(other_process, "discord:43", 2).wait_turn(2), 10)


def test_max_concurrency_is_at_least_one(redis_client: aioredis.Redis) -> None:
    with pytest.raises(ValueError, match="max_concurrency"):
        IdentifyGate(redis_client, "discord:42", 0)
