"""A written-out calculation gets the calculator without asking the model."""

from __future__ import annotations

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent, TurnSettings
from agent_graph.arithmetic_intent import Calculation, find_calculation
from tests.agent_graph.turns import run
from tests.fakes import ScriptedChatModel


@pytest.mark.parametrize(
    ("message", "expression", "whole"),
    [
        ("What is 37 * 91 + 5?", "37 * 91 + 5", True),
        ("¿Cuánto es 37 * 91 + 5?", "37 * 91 + 5", True),
        ("Calcula 987 × 654.", "987 * 654", True),
        ("what's 2^10", "2**10", True),
        ("1,234 * 3 please", "1234 * 3", True),
        ("sqrt(7569)", "sqrt(7569)", True),
        ("what is 10 - 3?", "10 - 3", True),
        ("How much is 1234 times 5678?", "1234 * 5678", True),
        ("¿Cuánto es 37 por 91 más 5?", "37 * 91 + 5", True),
        ("¿Cuánto es 999 más 1001 menos 250?", "999 + 1001 - 250", True),
        ("What is 2 to the power of 20?", "2 ** 20", True),
        ("¿Cuánto es 2 elevado a 16?", "2 ** 16", True),
        ("What is 15% of 860?", "15 / 100 * 860", True),
        ("¿Cuál es la raíz cuadrada de 1764?", "sqrt(1764)", True),
        ("What is 12 factorial?", "factorial(12)", True),
        ("Divide 10000 entre 16.", "10000 / 16", True),
        ("144 divided by 12", "144 / 12", True),
        (
            "what is 37*91+5, and can you also write me a short poem about it?",
            "37*91+5",
            False,
        ),
    ],
)
def test_calculations_are_found(message: str, expression: str, whole: bool) -> None:
    assert find_calculation(message) == Calculation(expression, whole)


@pytest.mark.parametrize(
    "message",
    [
        "Hi! How are you?",
        "The meeting is on 2026-11-28.",
        "We were 10-20 people.",
        "The shop is open 24/7.",
        "Add 1/2 cup of sugar.",
        "17 % 5",  # percent or modulo: left to the model
        "a 1920 x 1080 screen",
        "I finished 3 times in a row",
        "tres por ciento",
        "I have 3+ years of experience",
        "Room 101",
        "-5 degrees outside",
        "what is 9**9**9**9",  # the calculator refuses it, so it is no shortcut
        "e + 1 more thing",
        "what are 1+1 and 2*3?",  # two: the model makes both calls
    ],
)
def test_other_numbers_are_not_calculations(message: str) -> None:
    assert find_calculation(message) is None


@given(st.text(max_size=200))
def test_any_text_either_yields_an_evaluable_expression_or_none(message: str) -> None:
    from agent_graph.tools.arithmetic import evaluate

    found = find_calculation(message)
    if found is not None:
        evaluate(found.expression)  # never raises for what the detector returns


def agent(model: ScriptedChatModel, redis_url: str) -> Agent:
    saver = AsyncRedisSaver(client=aioredis.from_url(redis_url, decode_responses=False))
    return Agent(model, saver)


async def test_a_bare_calculation_is_answered_by_the_calculator(redis_client, redis_url) -> None:
    model = ScriptedChatModel()
    answer, events = await run(agent(model, redis_url), "What is 37 * 91 + 5?")
    assert answer == "37 * 91 + 5 = 3372"
    assert [(e.name, e.finished) for e in events] == [("calculator", False), ("calculator", True)]
    assert model.calls == []  # no model step was needed


async def test_a_calculation_within_a_request_is_answered_by_the_model(
    redis_client, redis_url
) -> None:
    model = ScriptedChatModel()
    model.enqueue("3372, and here is a poem.")
    answer, events = await run(
        agent(model, redis_url), "Compute 37 * 91 + 5 and then write me a poem about the number"
    )
    assert answer == "3372, and here is a poem."
    assert [e.name for e in events if e.finished] == ["calculator"]
    [answering] = model.calls
    # The model answers from the result, with no tool on offer to call again.
    assert "tools" not in answering["kwargs"]
    assert any("3372" in str(m) for m in answering["messages"])


async def test_without_the_calculator_enabled_the_model_answers(redis_client, redis_url) -> None:
    model = ScriptedChatModel()
    model.enqueue("About 3372.")
    turn = TurnSettings("Be brief.", {}, tools=("web_search",), document_scope="s")
    answer, events = await run(agent(model, redis_url), "What is 37 * 91 + 5?", turn)
    assert answer == "About 3372."
    assert events == []
