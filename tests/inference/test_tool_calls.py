"""Grammar-constrained tool calls through the pool, with the real SmolLM2 model."""

from __future__ import annotations

import asyncio
import json

import jsonschema
import pytest
from langchain_core.messages import HumanMessage

from inference.chat_model import PoolChatModel
from inference.client import InferenceClient
from inference.errors import InvalidJob
from inference.protocol import Chunk
from inference.tool_calls import ToolPlan, parse_call, plan_tools, prepare_messages
from tests.inference.conftest import ask

SCHEMAS: dict[str, dict[str, object]] = {
    "calculator": {
        "type": "object",
        "properties": {"expression": {"type": "string", "maxLength": 80}},
        "required": ["expression"],
    },
    "get_weather": {
        "type": "object",
        "properties": {
            "city": {"type": "string", "maxLength": 40},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city", "unit"],
    },
    "set_reminder": {
        "type": "object",
        "properties": {
            "minutes": {"type": "integer", "minimum": 1, "maximum": 1440},
            "urgent": {"type": "boolean"},
        },
        "required": ["minutes", "urgent"],
    },
}
TOOLS = [
    {"type": "function", "function": {"name": name, "description": f"{name} tool", "parameters": s}}
    for name, s in SCHEMAS.items()
]
PROMPTS = {
    "calculator": "What is 12 times 7?",
    "get_weather": "Is it cold in Oslo today?",
    "set_reminder": "Remind me to stretch in 20 minutes.",
}


# A conversation with one earlier call and its result.
HISTORY = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "12*7?"},
    {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "12*7"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_1", "name": "calculator", "content": "84"},
]


async def call_once(
    client: InferenceClient, prompt: str, tool_choice: object, seed: int
) -> list[Chunk]:
    # Room for the longest call the schemas allow (an 80-character string and the JSON).
    sampling = {"temperature": 1.0, "seed": seed, "max_tokens": 192}
    stream = client.stream(ask(prompt), sampling, tools=TOOLS, tool_choice=tool_choice)
    return [chunk async for chunk in stream]


def the_call(chunks: list[Chunk]) -> Chunk:
    calls = [chunk for chunk in chunks if chunk.kind == "tool_call"]
    assert len(calls) == 1, chunks
    assert not [chunk for chunk in chunks if chunk.kind == "delta"]
    assert chunks[-1].kind == "done" and chunks[-1].finish_reason == "tool_calls"
    return calls[0]


@pytest.mark.model
@pytest.mark.parametrize("name", sorted(SCHEMAS))
async def test_a_named_tool_call_always_parses_and_validates(worker, client, name) -> None:
    choice = {"type": "function", "function": {"name": name}}
    results = await asyncio.gather(
        *(call_once(client, PROMPTS[name], choice, seed) for seed in range(1, 6))
    )
    for chunks in results:
        call = the_call(chunks)
        assert call.tool_name == name
        assert call.tool_call_id.startswith("call_")
        jsonschema.validate(json.loads(call.text), SCHEMAS[name])


@pytest.mark.model
async def test_required_calls_one_of_the_offered_tools(worker, client) -> None:
    results = await asyncio.gather(
        *(call_once(client, PROMPTS["get_weather"], "required", seed) for seed in range(1, 7))
    )
    for chunks in results:
        call = the_call(chunks)
        jsonschema.validate(json.loads(call.text), SCHEMAS[call.tool_name])


@pytest.mark.model
async def test_auto_gives_text_or_a_valid_call_never_a_broken_one(worker, client) -> None:
    results = await asyncio.gather(
        *(call_once(client, prompt, "auto", 1) for prompt in PROMPTS.values())
    )
    for chunks in results:
        assert chunks[-1].kind == "done"
        calls = [chunk for chunk in chunks if chunk.kind == "tool_call"]
        if calls:
            jsonschema.validate(json.loads(calls[0].text), SCHEMAS[calls[0].tool_name])
        else:
            assert "".join(chunk.text for chunk in chunks if chunk.kind == "delta").strip()


@pytest.mark.model
async def test_the_chat_model_returns_langchain_tool_calls(worker, client) -> None:
    def calculator(expression: str) -> str:
        """Evaluate an arithmetic expression."""
        return expression

    model = PoolChatModel(client=client, sampling={"temperature": 0.0, "max_tokens": 96})
    bound = model.bind_tools([calculator], tool_choice="calculator")
    message = await bound.ainvoke([HumanMessage("What is 37 * 91 + 5?")])
    assert len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call["name"] == "calculator"
    assert isinstance(call["args"]["expression"], str)
    assert call["id"]


async def test_a_schema_the_grammar_builder_cannot_handle_is_refused(redis_client) -> None:
    broken = [
        {
            "type": "function",
            "function": {
                "name": "lookup",
                "parameters": {"type": "object", "properties": {"x": {"$ref": "#/nowhere"}}},
            },
        }
    ]
    with pytest.raises(InvalidJob, match="grammar"):
        await InferenceClient(redis_client).submit(ask("hi"), {}, tools=broken)


def test_bad_tool_choices_are_refused() -> None:
    with pytest.raises(InvalidJob, match="not among the tools"):
        plan_tools(TOOLS, {"type": "function", "function": {"name": "teleport"}})
    with pytest.raises(InvalidJob, match="tool_choice"):
        plan_tools(TOOLS, "sometimes")
    with pytest.raises(InvalidJob, match="same name"):
        plan_tools(TOOLS + TOOLS[:1], "auto")
    assert plan_tools(TOOLS, "none") is None
    assert plan_tools([], "required") is None


def test_earlier_calls_and_results_are_shown_as_text() -> None:
    plan = plan_tools(TOOLS, "auto")
    assert isinstance(plan, ToolPlan)
    prepared = prepare_messages(HISTORY, plan)
    assert prepared[0]["role"] == "system"
    assert prepared[0]["content"].startswith("Be brief.\n\nYou can call tools.")
    assert json.loads(prepared[2]["content"]) == {
        "name": "calculator",
        "arguments": {"expression": "12*7"},
    }
    assert prepared[3] == {"role": "user", "content": "Tool result (calculator):\n84"}


def test_a_cut_off_call_is_a_clear_error() -> None:
    plan = plan_tools(TOOLS, "required")
    assert plan is not None
    with pytest.raises(InvalidJob, match="cut off"):
        parse_call('{"name": "calculator", "arguments": {"expression": "1+', plan)
    call = parse_call('{"name": "calculator", "arguments": {"expression": "1+1"}}', plan)
    assert (call.name, call.arguments) == ("calculator", {"expression": "1+1"})


def test_numbers_outside_their_range_are_brought_into_it() -> None:
    plan = plan_tools(TOOLS, {"type": "function", "function": {"name": "set_reminder"}})
    assert plan is not None
    call = parse_call('{"name": "set_reminder", "arguments": {"minutes": 0, "urgent": true}}', plan)
    assert call.arguments == {"minutes": 1, "urgent": True}
    jsonschema.validate(call.arguments, SCHEMAS["set_reminder"])
    late = parse_call(
        '{"name": "set_reminder", "arguments": {"minutes": 9000, "urgent": false}}', plan
    )
    assert late.arguments["minutes"] == 1440
