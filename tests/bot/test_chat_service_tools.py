"""Tools through the chat service: the `tools` setting and the server's documents reach
the agent, and tool steps reach the reply sink as status lines.

(Kept beside the agent's tests because it checks the agent's side of that seam.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent
from bot.chat_service import ChatService, ServiceLimits
from bot.commands import CommandHandler
from bot.scope import Scope
from tests.fakes import FakePassage, InMemoryDocuments, RecordingSink, ScriptedChatModel

ALICE = Scope(platform="discord", server_id="g1", channel_id="c1", user_id="alice")


@pytest.fixture
async def parts(
    redis_client: aioredis.Redis, redis_url: str
) -> AsyncIterator[tuple[ChatService, ScriptedChatModel, InMemoryDocuments]]:
    raw = aioredis.from_url(redis_url, decode_responses=False)
    model = ScriptedChatModel()
    documents = InMemoryDocuments({"discord:g1": [FakePassage(1, "Rules", 2, "be kind always")]})
    yield (
        ChatService.on_redis(
            Agent(model, AsyncRedisSaver(client=raw), document_search=documents),
            redis_client,
            ServiceLimits(),
        ),
        model,
        documents,
    )
    await raw.aclose()


async def test_tool_steps_reach_the_sink_in_order(parts) -> None:
    service, model, _ = parts
    model.enqueue("Kindly[1].")
    sink = RecordingSink()
    await service.chat(ALICE, "What do our rules say about being kind", sink)
    assert sink.failure is None
    kinds = [kind for kind, _ in sink.events]
    assert kinds == ["start", "tool", "tool", "append", "finish"]
    assert sink.events[1] == (
        "tool",
        "search_documents: reading the documents: What do our rules say about being kind …",
    )
    assert sink.events[2][1].startswith("search_documents: Passages from this community's")
    # "Kindly" is not in the passage: the `strict` default answers with the passage itself.
    assert sink.text == "The documents say:\n> be kind always [1]"


async def test_a_written_out_sum_is_answered_by_the_calculator(parts) -> None:
    service, model, _ = parts
    sink = RecordingSink()
    await service.chat(ALICE, "what is 37 * 91 + 5?", sink)
    assert sink.failure is None
    assert [kind for kind, _ in sink.events] == ["start", "tool", "tool", "append", "finish"]
    assert sink.events[2][1].startswith("calculator: 37 * 91 + 5 = 3372 (")
    assert sink.text == "37 * 91 + 5 = 3372"
    assert model.calls == []


async def test_documents_of_the_server_are_searched(parts) -> None:
    service, model, documents = parts
    model.enqueue("Be kind [1].")
    sink = RecordingSink()
    await service.chat(ALICE, "rules of this server on being kind", sink)
    assert documents.searches == [("discord:g1", "rules of this server on being kind", 4)]
    assert "[1] Rules (part 3)" in model.calls[0]["messages"][-1].text


async def test_tools_setting_none_offers_no_tools(parts) -> None:
    service, model, _ = parts
    set_none = RecordingSink()
    await CommandHandler(service).handle(ALICE, "/settings set tools none", set_none)
    assert set_none.failure is None
    model.enqueue("About 6.")
    without = RecordingSink()
    await service.chat(ALICE, "what is 2 * 3?", without)
    assert without.text == "About 6." and "tool" not in [kind for kind, _ in without.events]
    assert "tools" not in model.calls[-1]["kwargs"]
    await CommandHandler(service).handle(ALICE, "/settings set tools calculator", RecordingSink())
    calls = len(model.calls)
    with_calculator = RecordingSink()
    await service.chat(ALICE, "what is 2 * 3?", with_calculator)
    assert with_calculator.text == "2 * 3 = 6" and len(model.calls) == calls


async def test_tool_routing_setting_reaches_the_agent(parts) -> None:
    service, model, _ = parts
    await CommandHandler(service).handle(ALICE, "/settings set tool_routing off", RecordingSink())
    model.enqueue("About 6.")
    sink = RecordingSink()
    await service.chat(ALICE, "what is 2 * 3?", sink)
    assert sink.text == "About 6." and "tools" not in model.calls[-1]["kwargs"]
