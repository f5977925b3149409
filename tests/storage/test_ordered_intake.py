"""Recorded events come out of their lane in id order, one holder at a time; a lane whose
holder died is listed for another process to take over."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from storage.ordered_intake import OrderedIntake

SOURCE = "telegram:777:update"


async def test_events_come_out_in_id_order_and_a_repeat_is_recorded_once(
    redis_client: aioredis.Redis,
) -> None:
    intake = OrderedIntake(redis_client, SOURCE)
    for event_id in (12, 10, 11):  # posted out of order
        assert await intake.record("chat-1", event_id, f"payload {event_id}")
    assert not await intake.record("chat-1", 11, "payload 11 again")
    hold = await intake.take("chat-1")
    assert hold is not None
    seen = []
    while (waiting := await hold.head()) is not None:
        seen.append((waiting.event_id, waiting.payload))
        await hold.done(waiting.event_id)
    assert seen == [(10, "payload 10"), (11, "payload 11"), (12, "payload 12")]
    assert await hold.release_if_empty()
    assert await intake.waiting("chat-1") == 0


async def test_one_holder_per_lane_and_lanes_apart(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    mine = OrderedIntake(redis_client, SOURCE)
    theirs = OrderedIntake(other_process, SOURCE)
    await mine.record("a", 1, "x")
    await mine.record("b", 2, "y")
    assert await mine.take("a") is not None
    assert await theirs.take("a") is None
    assert await theirs.take("b") is not None  # another chat goes on beside it


async def test_a_lane_is_not_handed_back_while_an_event_waits(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    intake = OrderedIntake(redis_client, SOURCE)
    await intake.record("a", 1, "x")
    hold = await intake.take("a")
    assert hold is not None
    waiting = await hold.head()
    assert waiting is not None
    await hold.done(waiting.event_id)
    # Recorded by another process while the holder was about to leave.
    await OrderedIntake(other_process, SOURCE).record("a", 2, "y")
    assert not await hold.release_if_empty()
    assert (await hold.head()) is not None
    assert await intake.unheld() == []  # still held: nobody else is to take it


async def test_a_dead_holders_lane_is_listed_once_its_lease_runs_out(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    died = OrderedIntake(redis_client, SOURCE, lease_s=0.3)
    await died.record("a", 1, "x")
    await died.record("a", 2, "y")
    hold = await died.take("a")
    assert hold is not None
    assert (await hold.head()) is not None  # and then the process is killed
    survivor = OrderedIntake(other_process, SOURCE, lease_s=0.3)
    assert await survivor.unheld() == []
    await asyncio.sleep(0.5)
    assert await survivor.unheld() == ["a"]
    taken = await survivor.take("a")
    assert taken is not None
    first = await taken.head()
    assert first is not None and first.event_id == 1  # the unfinished one, first
    assert not await hold.refresh()  # the dead holder's lease is not its own any more


async def test_a_lane_handed_back_with_events_is_listed_at_once(
    redis_client: aioredis.Redis,
) -> None:
    intake = OrderedIntake(redis_client, SOURCE)
    await intake.record("a", 1, "x")
    hold = await intake.take("a")
    assert hold is not None
    await hold.release()  # stopping
    assert await intake.unheld() == ["a"]
    assert await intake.unheld() == ["a"]  # listed until someone takes it
    emptied = await intake.take("a")
    assert emptied is not None
    await emptied.done(1)
    assert await emptied.release_if_empty()
    assert await intake.unheld() == []
