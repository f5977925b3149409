"""The chat service with a scripted model, real Redis memory, quotas and locks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest
import redis.asyncio as aioredis
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent
from bot.chat_service import ChatService, ServiceLimits
from bot.chat_settings import ChatSettings
from bot.commands import CommandHandler
from bot.config import SamplingDefaults
from bot.failures import STORAGE_DOWN
from bot.scope import Role, Scope
from bot.stats import BotStats
from inference.client import InferenceClient
from inference.errors import PoolUnavailable
from storage.conversation_lock import ConversationLocks
from tests.fakes import RecordingSink, ScriptedChatModel

ALICE = Scope(platform="discord", server_id="g1", channel_id="c1", user_id="alice")
BOB = replace(ALICE, user_id="bob")
ADMIN = replace(ALICE, user_id="root", role=Role.ADMIN)


@pytest.fixture
def model() -> ScriptedChatModel:
    return ScriptedChatModel()


@pytest.fixture
async def service(
    redis_client: aioredis.Redis, redis_url: str, model: ScriptedChatModel
) -> AsyncIterator[ChatService]:
    raw = aioredis.from_url(redis_url, decode_responses=False)
    yield ChatService.on_redis(
        Agent(model, AsyncRedisSaver(client=raw)),
        redis_client,
        ServiceLimits(max_message_chars=1000, user_requests_per_minute=3),
        ChatSettings.from_defaults(SamplingDefaults(burst_window_s=0)),
    )
    await raw.aclose()


async def ask(service: ChatService, scope: Scope, text: str) -> RecordingSink:
    sink = RecordingSink()
    await service.chat(scope, text, sink)
    return sink


async def command(service: ChatService, scope: Scope, text: str) -> RecordingSink:
    sink = RecordingSink()
    await CommandHandler(service).handle(scope, text, sink)
    return sink


async def test_reply_streams_into_the_sink_and_is_remembered(service, model) -> None:
    model.enqueue("Hello there, Alice.")
    sink = await ask(service, ALICE, "Hi, I am Alice")
    assert sink.events[0] == ("start", "")
    assert sink.text == "Hello there, Alice."
    assert len([kind for kind, _ in sink.events if kind == "append"]) > 1
    assert sink.events[-1] == ("finish", "")
    history = await service.agent.history(ALICE.conversation_key)
    assert [m.text for m in history] == ["Hi, I am Alice", "Hello there, Alice."]


async def test_empty_and_oversized_messages_get_clear_errors(service, model) -> None:
    empty = await ask(service, ALICE, "   ")
    assert empty.failure is not None and "empty" in empty.failure
    huge = await ask(service, ALICE, "x" * 100_000)
    assert huge.failure is not None and "100000 characters" in huge.failure
    assert "limit is 1000" in huge.failure
    assert model.calls == []  # neither reached the model
    # The service keeps serving afterwards.
    assert (await ask(service, ALICE, "still there?")).failure is None


async def test_user_quota_refuses_with_retry_time(service) -> None:
    for _ in range(3):
        assert (await ask(service, ALICE, "hi")).failure is None
    refused = await ask(service, ALICE, "one more")
    assert refused.failure is not None
    assert refused.failure.startswith("Slow down")
    assert "Try again in" in refused.failure
    # Another user in the same server is not affected.
    assert (await ask(service, BOB, "hi")).failure is None


async def test_a_burst_is_told_to_slow_down_once(service) -> None:
    sinks = [await ask(service, ALICE, f"message {i}") for i in range(30)]
    answered = [sink for sink in sinks if sink.events and sink.failure is None]
    refused = [sink for sink in sinks if sink.failure is not None]
    assert len(answered) == 3  # the quota in this fixture
    assert len(refused) == 1 and refused[0].failure.startswith("Slow down")
    # The other 26 got nothing at all: no event reached their sinks.
    assert sum(1 for sink in sinks if not sink.events) == 26


async def test_shutdown_ends_replies_in_flight_with_a_note(service, model) -> None:
    model.token_delay_s = 0.05
    model.enqueue(" ".join(f"word{i}" for i in range(200)))
    sink = RecordingSink()
    running = asyncio.create_task(service.chat(ALICE, "write a lot", sink))
    await sink.first_text.wait()
    assert service.replies_in_flight == 1
    await service.shutdown()
    await asyncio.wait_for(running, timeout=10)
    assert sink.finish_note is not None and "restarting" in sink.finish_note
    assert 0 < len(sink.text.split()) < 200
    assert service.replies_in_flight == 0


async def test_one_generation_per_conversation_and_cancel(service, model) -> None:
    model.token_delay_s = 0.05
    model.enqueue(" ".join(f"word{i}" for i in range(200)))
    model.enqueue("your turn now")
    first = RecordingSink()
    running = asyncio.create_task(service.chat(ALICE, "write a lot", first))
    await first.first_text.wait()
    second = RecordingSink()  # same channel: same conversation; it waits its turn
    waiting = asyncio.create_task(service.chat(BOB, "me too", second))
    await second.waiting.wait()
    assert second.queued_at == ["queue: your question is queued behind 1 answer"]
    cancel = await command(service, BOB, "/cancel")
    assert cancel.text == "Stopping the answer."
    await asyncio.wait_for(running, timeout=10)
    assert first.finish_note == "(stopped by /cancel)"
    assert 0 < len(first.text.split()) < 200
    # /cancel kept the queue: the waiting question is answered next.
    await asyncio.wait_for(waiting, timeout=10)
    assert second.failure is None and second.text == "your turn now"
    # The history keeps what people saw of the stopped answer, then the next turn.
    history = await service.agent.history(ALICE.conversation_key)
    assert [m.text for m in history] == ["write a lot", first.text, "me too", "your turn now"]
    nothing = await command(service, BOB, "/cancel")
    assert nothing.text == "Nothing to cancel."


async def test_cancel_from_another_process_stops_the_answer(service, model, redis_client) -> None:
    model.token_delay_s = 0.05
    model.enqueue(" ".join(f"w{i}" for i in range(200)))
    sink = RecordingSink()
    running = asyncio.create_task(service.chat(ALICE, "long", sink))
    await sink.first_text.wait()
    # Another bot process sees only Redis.
    assert await ConversationLocks(redis_client).request_cancel(ALICE.conversation_key)
    await asyncio.wait_for(running, timeout=10)
    assert sink.finish_note == "(stopped by /cancel)"


async def test_other_conversations_run_at_the_same_time(service, model) -> None:
    model.token_delay_s = 0.01
    other = replace(ALICE, channel_id="c2")
    sinks = [RecordingSink(), RecordingSink()]
    await asyncio.gather(service.chat(ALICE, "one", sinks[0]), service.chat(other, "two", sinks[1]))
    assert all(sink.failure is None and sink.text == "ok" for sink in sinks)


async def test_settings_reach_the_model(service, model) -> None:
    await command(service, ALICE, "/settings set temperature 0.2")
    await command(service, ALICE, "/settings set system_prompt You're a pirate.  Say arr.")
    await ask(service, ALICE, "hello")
    call = model.calls[-1]
    assert call["kwargs"]["temperature"] == 0.2
    # The setting comes first; tool guidance for the enabled tools may follow it.
    assert call["messages"][0].text.startswith("You're a pirate.  Say arr.")


async def test_settings_commands_validate_and_check_roles(service) -> None:
    bad = await command(service, ALICE, "/settings set temperature 5")
    assert bad.failure == "temperature must be a number from 0.0 to 2.0 (got '5')"
    unknown = await command(service, ALICE, "/settings set warmth 1")
    assert unknown.failure is not None and "known settings" in unknown.failure
    denied = await command(service, ALICE, "/settings set top_k 10 --level server")
    assert denied.failure is not None and "admin" in denied.failure
    allowed = await command(service, ADMIN, "/settings set top_k 10 --level server")
    assert allowed.failure is None and "server level" in allowed.text
    shown = await command(service, BOB, "/settings show")
    assert "top_k = 10  (server)" in shown.text
    bad_level = await command(service, ADMIN, "/settings set top_k 10 --level planet")
    assert bad_level.failure is not None and "conversation, channel, server, global" in (
        bad_level.failure
    )


async def test_reset_forgets_the_conversation(service, model) -> None:
    await ask(service, ALICE, "remember me")
    reply = await command(service, ALICE, "/reset")
    assert reply.failure is None
    assert await service.agent.history(ALICE.conversation_key) == []


async def test_help_and_unknown_commands(service) -> None:
    help_reply = await command(service, ALICE, "/help@commons_bot")
    assert "/settings set KEY VALUE" in help_reply.text and "temperature" in help_reply.text
    unknown = await command(service, ALICE, "/frobnicate")
    assert unknown.failure == "unknown command /frobnicate; send /help for the list"


async def test_model_failures_are_reported_and_service_goes_on(service, model) -> None:
    # One model call per plain answer: the tool router offers the model no tools.
    crash, down = RuntimeError("segfault-ish"), PoolUnavailable("no inference worker is running")
    model.enqueue(crash, down)
    failed = await ask(service, ALICE, "hi")
    assert failed.failure == "Something went wrong while answering; please try again."
    unavailable = await ask(service, ALICE, "hi")
    assert unavailable.failure == "no inference worker is running"  # says what to fix
    assert (await ask(service, ALICE, "hi again")).failure is None


async def test_storage_outage_is_reported_and_does_not_crash(tmp_path, model) -> None:
    dead = aioredis.from_url(f"unix://{tmp_path}/gone.sock", decode_responses=True)
    service = ChatService.on_redis(
        Agent(model, AsyncRedisSaver(client=dead)), dead, ServiceLimits()
    )
    chat = await ask(service, ALICE, "hello?")
    assert chat.failure == STORAGE_DOWN
    shown = await command(service, ALICE, "/settings show")
    assert shown.failure == STORAGE_DOWN
    assert model.calls == []
    await dead.aclose()


async def test_stats_are_for_admins(service, redis_client) -> None:
    stats = BotStats(InferenceClient(redis_client), ConversationLocks(redis_client))
    handler = CommandHandler(service, stats=stats)
    refused = RecordingSink()
    await handler.handle(ALICE, "/stats", refused)
    assert refused.failure == "only admins can use /stats; ask an admin"
    shown = RecordingSink()
    await handler.handle(ADMIN, "/stats", shown)
    assert "Workers: 0 live" in shown.text and "Queue: 0 waiting" in shown.text
    assert "Answers being written: 0" in shown.text


class _LostSink(RecordingSink):
    """A reply whose chat disappears once the first text has been shown."""

    @property
    def abandoned(self) -> bool:
        return self.first_text.is_set()


async def test_generation_stops_when_nobody_can_receive_the_reply(service, model) -> None:
    model.token_delay_s = 0.05
    model.enqueue(" ".join(f"word{i}" for i in range(200)))
    sink = _LostSink()
    await asyncio.wait_for(service.chat(ALICE, "write a lot", sink), timeout=10)
    assert 0 < len(sink.text.split()) < 200
    assert service.replies_in_flight == 0
