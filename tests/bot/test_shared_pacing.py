"""Call windows counted in Redis: two bot processes (two pacers on two clients of one
Redis) delivering for one bot stay together within its limits."""

from __future__ import annotations

import asyncio
import time

import redis.asyncio as aioredis

from bot.delivery import DeliveryLimits, SharedPacer, StreamingReply
from bot.delivery.pacing import MonotonicClock
from bot.splitter import split_message
from storage.call_windows import RedisCallWindows, WindowSpec
from tests.bot.test_delivery import FakeTransport

OVERALL = WindowSpec("pace:test:bot", calls=5, window_s=30.0)


def pacers(
    *clients: aioredis.Redis,
    calls: int = 3,
    window_s: float = 30.0,
    overall: WindowSpec = OVERALL,
) -> list[SharedPacer]:
    return [
        SharedPacer(RedisCallWindows(client), "pace:test:chat", calls, window_s, overall=overall)
        for client in clients
    ]


async def test_two_processes_share_one_destination_window(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    first, second = (pacer.window("42") for pacer in pacers(redis_client, other_process))
    assert await first.try_take()
    assert await second.try_take()
    assert await first.try_take()
    assert not await second.try_take()  # three calls in 30 s, whoever made them
    assert not await first.try_take()
    assert 25.0 < await second.wait_s() <= 30.0
    other_chat = pacers(other_process)[0].window("43")
    assert await other_chat.try_take()  # another destination has its own window


async def test_the_bot_wide_window_bounds_every_destination_of_every_process(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    first, second = pacers(redis_client, other_process)
    taken = [
        await pacer.window(f"chat-{n}").try_take() for n in range(4) for pacer in (first, second)
    ]
    assert taken.count(True) == OVERALL.calls
    assert taken[: OVERALL.calls] == [True] * OVERALL.calls
    assert await first.window("chat-new").wait_s() > 25.0


async def test_concurrent_takes_never_exceed_the_budget(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    windows = [pacer.window("busy") for pacer in pacers(redis_client, other_process, calls=4)]
    results = await asyncio.gather(*(windows[n % 2].try_take() for n in range(40)))
    assert results.count(True) == 4


async def test_a_pause_seen_by_one_process_holds_the_other(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    first, second = (pacer.window("42") for pacer in pacers(redis_client, other_process))
    await first.pause(20.0)
    assert not await second.try_take()
    assert 15.0 < await second.wait_s() <= 20.0
    await second.pause(5.0)  # a shorter pause never shortens a longer one
    assert await first.wait_s() > 15.0


async def test_keep_free_and_noted_calls_count(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    first, second = (pacer.window("42") for pacer in pacers(redis_client, other_process))
    assert await first.try_take(keep_free=1)
    assert await second.try_take(keep_free=1)
    assert not await first.try_take(keep_free=1)  # the last call is kept for a final text
    await second.note_call(first.clock.now() + 2.0)  # a library's own retry, soon
    assert not await first.try_take()  # two taken and the retry: the budget of three


async def test_idle_windows_expire(redis_client: aioredis.Redis) -> None:
    window = pacers(redis_client, window_s=0.2)[0].window("quiet")
    assert await window.try_take()
    assert 0 < await redis_client.pttl("pace:test:chat:quiet") <= 1200
    await asyncio.sleep(0.4)
    assert not await redis_client.exists("pace:test:chat:quiet")


async def test_two_processes_stream_into_one_chat_within_its_window(
    redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    """Two replies in one chat, each delivered by another process: every call of both is
    counted in the one window, and both answers arrive whole."""
    limits = DeliveryLimits(
        max_length=200, edit_interval_s=0.05, channel_messages=6, channel_window_s=1.0
    )
    clock = MonotonicClock()
    transports = [FakeTransport(clock, limits=limits) for _ in range(2)]  # type: ignore[arg-type]
    replies = [
        StreamingReply(transport, pacer.window("chat"), clock)
        for transport, pacer in zip(
            transports,
            pacers(
                redis_client,
                other_process,
                calls=6,
                window_s=1.0,
                overall=WindowSpec("pace:test:bot", 30, 1.0),
            ),
            strict=True,
        )
    ]
    answers = [f"answer {n} " * 60 for n in range(2)]

    async def write(reply: StreamingReply[int], answer: str) -> None:
        await reply.start()
        for start in range(0, len(answer), 20):
            await reply.append(answer[start : start + 20])
            await asyncio.sleep(0.02)
        await reply.finish()

    started = time.monotonic()
    await asyncio.gather(*(write(r, a) for r, a in zip(replies, answers, strict=True)))
    for transport, answer in zip(transports, answers, strict=True):
        assert transport.texts == split_message(answer, 200)
    times = sorted(call.at - started for t in transports for call in t.updates())
    # Within one Redis-timed window of 1 s: a little slack for the time between a call
    # being granted and the transport recording it.
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 0.8) <= 6, times
