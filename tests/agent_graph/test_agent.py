"""The agent with a scripted model and the real Redis checkpointer."""

from __future__ import annotations

import redis.asyncio as aioredis
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent, TextDelta, TurnSettings
from agent_graph.graph import fit_history
from tests.fakes import ScriptedChatModel

TURN = TurnSettings(system_prompt="Be brief.", sampling={"temperature": 0.1}, history_budget=2048)


def saver(redis_url: str) -> AsyncRedisSaver:
    return AsyncRedisSaver(client=aioredis.from_url(redis_url, decode_responses=False))


async def collect(agent: Agent, thread: str, text: str, turn: TurnSettings = TURN) -> str:
    pieces = [
        event.text
        async for event in agent.stream_reply(thread, text, turn)
        if isinstance(event, TextDelta)
    ]
    return "".join(pieces)


async def test_reply_streams_in_pieces_and_uses_turn_settings(redis_client, redis_url) -> None:
    model = ScriptedChatModel()
    model.enqueue("Paris is the capital of France.")
    agent = Agent(model, saver(redis_url))
    events = [event async for event in agent.stream_reply("t1", "Capital of France?", TURN)]
    assert len(events) > 1  # streamed, not one block
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == (
        "Paris is the capital of France."
    )
    sent = model.calls[0]
    assert isinstance(sent["messages"][0], SystemMessage)
    assert sent["messages"][0].text == "Be brief."
    assert sent["kwargs"]["temperature"] == 0.1


async def test_history_survives_a_new_agent_and_reset_forgets(redis_client, redis_url) -> None:
    model = ScriptedChatModel()
    model.enqueue("Hello Ana.", "Your name is Ana.")
    first = Agent(model, saver(redis_url))
    await collect(first, "t2", "My name is Ana.")
    # A new agent on the same Redis is what a restarted process sees.
    second = Agent(model, saver(redis_url))
    assert await collect(second, "t2", "What is my name?") == "Your name is Ana."
    prompt = model.calls[1]["messages"]
    assert [m.text for m in prompt[1:]] == ["My name is Ana.", "Hello Ana.", "What is my name?"]
    history = await second.history("t2")
    assert [type(m) for m in history] == [HumanMessage, AIMessage, HumanMessage, AIMessage]
    # The system prompt is applied per turn, never stored.
    assert not any(isinstance(m, SystemMessage) for m in history)
    await second.reset("t2")
    assert await second.history("t2") == []


async def test_threads_are_separate(redis_client, redis_url) -> None:
    model = ScriptedChatModel()
    agent = Agent(model, saver(redis_url))
    await collect(agent, "a", "only in a")
    await collect(agent, "b", "only in b")
    assert [m.text for m in await agent.history("b")] == ["only in b", "ok"]


def test_fit_history_keeps_newest_turns_and_starts_on_a_human_turn() -> None:
    messages = []
    for index in range(50):
        messages.append(HumanMessage(f"question {index} " + "word " * 20))
        messages.append(AIMessage(f"answer {index} " + "word " * 20))
    kept = fit_history(messages, token_budget=300)
    assert 0 < len(kept) < len(messages)
    assert isinstance(kept[0], HumanMessage)
    assert kept[-1] is messages[-1]
    assert kept == messages[-len(kept) :]
