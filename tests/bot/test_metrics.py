"""The bot's metrics, fed by a real streamed reply and a real chat turn: the hooks in the
delivery layer and the chat service report through `bot.metrics`."""

from __future__ import annotations

import asyncio

from bot import metrics
from bot.delivery.transport import RetryLater
from tests.bot.test_delivery import FakeClock, FakeTransport, make_reply, stream


def value(name: str, **labels: str) -> float:
    found = metrics.REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def test_a_delivered_reply_is_timed_and_its_calls_counted() -> None:
    async def turn() -> None:
        metrics.begin_turn("metrics-a", "metrics-a:1:2:-")
        clock = FakeClock()
        transport = FakeTransport(clock, failures={1: RetryLater(3.0)})
        reply = make_reply(transport)
        await stream(reply, "An answer that streams in. " * 20, step=25, clock=clock)
        await reply.finish()

    before_ok = value("bot_platform_calls_total", platform="metrics-a", method="send", result="ok")
    # A turn runs in its own task, as each platform event does: its context is its own.
    await asyncio.create_task(turn())
    assert value("bot_first_token_seconds_count", platform="metrics-a") == 1
    assert value("bot_reply_delivered_seconds_count", platform="metrics-a") == 1
    assert value("bot_platform_calls_total", platform="metrics-a", method="send", result="ok") > (
        before_ok
    )
    retried = sum(
        value("bot_platform_calls_total", platform="metrics-a", method=m, result="retry_later")
        for m in ("send", "edit")
    )
    assert retried == 1


async def test_outside_a_turn_nothing_is_timed() -> None:
    async def untimed() -> None:
        clock = FakeClock()
        reply = make_reply(FakeTransport(clock))
        await stream(reply, "text", clock=clock)
        await reply.finish()

    total = sum(
        value("bot_reply_delivered_seconds_count", platform=p)
        for p in ("discord", "telegram", "terminal", "unknown")
    )
    await asyncio.create_task(untimed())
    after = sum(
        value("bot_reply_delivered_seconds_count", platform=p)
        for p in ("discord", "telegram", "terminal", "unknown")
    )
    assert after == total
    # The call still counts, under an unknown platform.
    assert value("bot_platform_calls_total", platform="unknown", method="send", result="ok") >= 1


def test_series_exist_before_the_first_event() -> None:
    exposed = {m.name for m in metrics.REGISTRY.collect() for _ in m.samples}
    assert {"bot_replies", "bot_first_token_seconds", "bot_platform_calls", "bot_tool_calls"} <= (
        exposed
    )
    assert (
        metrics.REGISTRY.get_sample_value(
            "bot_replies_total", {"platform": "telegram", "outcome": "refused"}
        )
        is not None
    )
