"""Two-step tool use: a greedy, forced choice of tool, then a forced call of it."""

from __future__ import annotations

import redis.asyncio as aioredis
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent
from agent_graph.routing import ROUTE_SAMPLING, ROUTE_TOOL
from tests.agent_graph.turns import run
from tests.fakes import ScriptedChatModel, tool_call


def routed_agent(model: ScriptedChatModel, redis_url: str) -> Agent:
    saver = AsyncRedisSaver(client=aioredis.from_url(redis_url, decode_responses=False))
    # Arithmetic detection off: these tests are about the model's own two-step choice.
    return Agent(model, saver, route_tools=True, detect_arithmetic=False)


async def test_a_chosen_tool_is_called_with_forced_arguments(redis_client, redis_url) -> None:
    model = ScriptedChatModel()
    model.enqueue(
        tool_call(ROUTE_TOOL, tool="calculator"),
        tool_call("calculator", expression="37 * 91 + 5"),
        "37 * 91 + 5 = 3372.",
    )
    answer, events = await run(routed_agent(model, redis_url), "what is 37 * 91 + 5?")
    assert answer == "37 * 91 + 5 = 3372."
    assert [e.name for e in events if e.finished] == ["calculator"]
    assert "3372" in next(e.detail for e in events if e.finished)
    route, call, final = model.calls
    # The decision: only the route pseudo-tool, forced, decoded greedily.
    assert route["kwargs"]["tool_choice"] == ROUTE_TOOL
    assert [t["function"]["name"] for t in route["kwargs"]["tools"]] == [ROUTE_TOOL]
    enum = route["kwargs"]["tools"][0]["function"]["parameters"]["properties"]["tool"]["enum"]
    assert enum == ["none", "calculator"]
    assert route["kwargs"]["temperature"] == ROUTE_SAMPLING["temperature"]
    # The call: the chosen tool only, forced.
    assert call["kwargs"]["tool_choice"] == "calculator"
    assert [t["function"]["name"] for t in call["kwargs"]["tools"]] == ["calculator"]
    # After the result the model answers (tools offered again, not forced).
    assert "tool_choice" not in final["kwargs"]


async def test_none_goes_straight_to_a_plain_answer(redis_client, redis_url) -> None:
    model = ScriptedChatModel()
    model.enqueue(tool_call(ROUTE_TOOL, tool="none"), "Hello! How can I help?")
    answer, events = await run(routed_agent(model, redis_url), "hi there")
    assert answer == "Hello! How can I help?"
    assert events == []
    assert len(model.calls) == 2
    assert "tools" not in model.calls[1]["kwargs"]  # no tool on offer to confuse it


async def test_without_routing_the_model_decides_in_one_step(redis_client, redis_url) -> None:
    model = ScriptedChatModel()
    model.enqueue("Hello!")
    saver = AsyncRedisSaver(client=aioredis.from_url(redis_url, decode_responses=False))
    answer, _ = await run(Agent(model, saver), "hi")
    assert answer == "Hello!"
    assert len(model.calls) == 1
    assert "tool_choice" not in model.calls[0]["kwargs"]
