"""Conversation memory: what the model sees, what is stored, and for how long.

Trimming is checked on message lists; storage bounds and expiry on the real Redis
server through the agent, the way the app uses them.
"""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent, TextDelta, TurnSettings
from agent_graph.history import NOT_RUN, fit_history, overflow, repair_tool_pairs
from tests.agent_graph.test_agent_tools import assert_pairs_intact
from tests.fakes import ScriptedChatModel, tool_call

TURN = TurnSettings("Be brief.", {}, tools=("calculator",), tool_routing="model")


def tool_turn(index: int, result_words: int = 20) -> list[BaseMessage]:
    call_id = f"call_{index}"
    return [
        HumanMessage(f"question {index}"),
        AIMessage(
            "", tool_calls=[{"name": "calculator", "args": {"expression": "1"}, "id": call_id}]
        ),
        ToolMessage("result " * result_words, tool_call_id=call_id, name="calculator"),
        AIMessage(f"answer {index}"),
    ]


def test_trimming_keeps_each_tool_call_with_its_result() -> None:
    messages = [message for index in range(30) for message in tool_turn(index)]
    for budget in range(20, 800, 7):
        kept = fit_history(messages, budget)
        assert kept, budget
        assert isinstance(kept[0], HumanMessage)
        # Kept in order, from the newest turn backwards, never reordered.
        positions = [next(i for i, m in enumerate(messages) if m is k) for k in kept]
        assert positions == sorted(positions) and positions[0] >= len(messages) - 4 * len(
            [m for m in kept if isinstance(m, HumanMessage)]
        )
        assert_pairs_intact(kept)


def test_a_turn_too_long_for_the_budget_keeps_its_question_and_newest_whole_steps() -> None:
    steps: list[BaseMessage] = [HumanMessage("big question")]
    for index in range(6):
        call_id = f"c{index}"
        steps.append(
            AIMessage(
                "", tool_calls=[{"name": "web_search", "args": {"query": "q"}, "id": call_id}]
            )
        )
        steps.append(ToolMessage("text " * 100, tool_call_id=call_id, name="web_search"))
    kept = fit_history([*tool_turn(0), *steps], token_budget=300)
    assert kept[0].text == "big question"
    assert 1 < len(kept) < len(steps)
    assert kept[-1] is steps[-1]
    assert_pairs_intact(kept)
    # Nothing fits but the question: the question alone, never a lone result.
    assert fit_history(steps, token_budget=5) == [steps[0]]


def test_repair_closes_calls_without_results_and_drops_stray_results() -> None:
    human = HumanMessage("q")
    call = AIMessage("", tool_calls=[{"name": "calculator", "args": {}, "id": "a"}])
    stray = ToolMessage("stray", tool_call_id="nobody")
    repaired = repair_tool_pairs([human, call, stray, AIMessage("stopped"), HumanMessage("next")])
    assert [type(m) for m in repaired] == [
        HumanMessage,
        AIMessage,
        ToolMessage,
        AIMessage,
        HumanMessage,
    ]
    assert repaired[2].text == NOT_RUN and repaired[2].tool_call_id == "a"
    assert_pairs_intact(repaired)


def test_overflow_drops_oldest_whole_turns_only() -> None:
    messages = [message for index in range(10) for message in tool_turn(index)]
    dropped = overflow(messages, max_messages=22)
    assert dropped == messages[:20]  # five whole turns of four
    assert overflow(messages, max_messages=40) == []
    assert overflow(messages[-4:], max_messages=1) == []  # the newest turn always stays


async def test_stored_history_is_bounded(redis_client: aioredis.Redis, redis_url: str) -> None:
    client = aioredis.from_url(redis_url, decode_responses=False)
    try:
        model = ScriptedChatModel()
        agent = Agent(model, AsyncRedisSaver(client=client), max_stored_messages=8)
        for index in range(6):
            model.enqueue(tool_call("calculator", expression=f"{index} + 1"), f"answer {index}")
            async for _ in agent.stream_reply("bounded", f"question {index}", TURN):
                pass
        history = await agent.history("bounded")
        # Pruned before each answer is added: at most the bound plus the newest turn.
        assert len(history) <= 8 + 4
        assert [m.text for m in history if isinstance(m, HumanMessage)][-1] == "question 5"
        assert isinstance(history[0], HumanMessage)
        assert_pairs_intact(history)
    finally:
        await client.aclose()


async def test_idle_threads_expire_and_activity_keeps_them(
    redis_client: aioredis.Redis, redis_url: str
) -> None:
    client = aioredis.from_url(redis_url, decode_responses=False)
    try:
        model = ScriptedChatModel()
        agent = Agent(model, AsyncRedisSaver(client=client, ttl=2))
        async for _ in agent.stream_reply("ttl", "first", TURN):
            pass
        await asyncio.sleep(1.2)
        async for _ in agent.stream_reply("ttl", "second", TURN):
            pass
        assert await redis_client.keys("lg:*:ttl:*")
        await asyncio.sleep(1.2)  # 2.4 s after the first turn, 1.2 s after the second
        assert [m.text for m in await agent.history("ttl")] == ["first", "ok", "second", "ok"]
        for _ in range(50):  # poll: Redis expires keys lazily and in sampled sweeps
            if not await agent.history("ttl"):
                break
            await asyncio.sleep(0.2)
        assert await agent.history("ttl") == []
        assert await redis_client.keys("lg:*:ttl:*") == []
        # An expired conversation starts afresh.
        model.enqueue("new start")
        events = [e async for e in agent.stream_reply("ttl", "hello", TURN)]
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "new start"
        assert [m.text for m in await agent.history("ttl")] == ["hello", "new start"]
    finally:
        await client.aclose()
