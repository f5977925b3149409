"""A chat turn through the real chat service (real Redis, scripted model) is counted by
outcome, and its tool calls by tool, in the bot's metrics."""

from __future__ import annotations

import redis.asyncio as aioredis

from bot import metrics
from bot.chat_service import ChatService, ServiceLimits
from bot.platforms.base import BotCore
from bot.scope import Scope
from tests.fakes import RecordingSink, ScriptedChatModel


def replies(platform: str, outcome: str) -> float:
    found = metrics.REGISTRY.get_sample_value(
        "bot_replies_total", {"platform": platform, "outcome": outcome}
    )
    return 0.0 if found is None else found


async def test_turns_are_counted_by_outcome(
    core: BotCore, model: ScriptedChatModel, redis_client: aioredis.Redis
) -> None:
    scope = Scope("metrics-turns", "server", "channel", "user")
    model.enqueue("Forty-two.")
    sink = RecordingSink()
    await core.chat.chat(scope, "what is the answer?", sink)
    assert sink.text == "Forty-two."
    assert replies("metrics-turns", "done") == 1

    # One request a minute: the second is refused by the quota, and counted as such.
    strict = ChatService.on_redis(
        core.chat.agent, redis_client, ServiceLimits(user_requests_per_minute=1)
    )
    other = Scope("metrics-turns", "server", "channel", "someone-else")
    model.enqueue("First.")
    await strict.chat(other, "one", RecordingSink())
    refused = RecordingSink()
    await strict.chat(other, "two", refused)
    assert refused.failure is not None and "Slow down" in refused.failure
    assert replies("metrics-turns", "refused") == 1
    assert replies("metrics-turns", "done") == 2
    assert replies("metrics-turns", "failed") == 0
