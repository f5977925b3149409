"""A written-out calculation gets the calculator without asking the model."""

from __future__ import annotations

import math

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent, TurnSettings
from agent_graph.arithmetic_intent import Calculation, find_calculation, uses_every_number
from agent_graph.tools.arithmetic import CalculationError, evaluate
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
        ("divide 144 by 12 and add 5", "144 / 12 + 5", True),
        ("Add 17 and 26, then multiply by 3.", "(17 + 26) * 3", True),
        ("subtract 4 from 10 and then divide by 2", "(10 - 4) / 2", True),
        ("Suma 45 y 55 y divide entre 4.", "(45 + 55) / 4", True),
        ("Multiplica 15 por 6 y luego resta 10.", "15 * 6 - 10", True),
        ("What is 3.5 to the power of 2?", "3.5 ** 2", True),
        ("Could you please calculate 12 * 12 for me and tell me the answer?", "12 * 12", True),
        ("Divide 98765 by 5 and give me the result.", "98765 / 5", True),
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
        "add 3 and 4 and 5",  # the chain stops at "and 5": never half of it
        "divide 144 by 12 and then tell me about 5 cats",
        "I have 3 kids; what is 37 * 91?",  # a number the expression does not use
        "e + 1 more thing",
        "what are 1+1 and 2*3?",  # two: the model makes both calls
    ],
)
def test_other_numbers_are_not_calculations(message: str) -> None:
    assert find_calculation(message) is None


@pytest.mark.parametrize(
    ("message", "expression", "reason"),
    [
        ("what is 1 / 0?", "1 / 0", "division by zero"),
        ("what is 5 divided by 0", "5 / 0", "division by zero"),
        ("what is 9**9**9**9", "9**9**9**9", "exponents above"),
        ("sqrt(-4)", "sqrt(-4)", "domain"),
        ("500 factorial", "factorial(500)", "factorial needs"),
    ],
)
def test_a_refused_calculation_is_found_with_its_reason(
    message: str, expression: str, reason: str
) -> None:
    found = find_calculation(message)
    assert found is not None and found.expression == expression
    assert reason in found.refusal


@given(st.text(max_size=200))
def test_any_text_either_yields_an_evaluable_expression_or_a_reason(message: str) -> None:
    found = find_calculation(message)
    if found is None:
        return
    try:
        evaluate(found.expression)
    except CalculationError as exc:
        assert found.refusal == str(exc)
    else:
        assert found.refusal == ""


_STEP_WORDS = {
    "+": ("add", "plus", "suma", "más"),
    "-": ("subtract", "minus", "resta", "menos"),
    "*": ("multiply by", "times", "multiplica por"),
    "/": ("divide by", "divide entre"),
}
_FIRST_WORDS = {
    "+": ("add {a} and {b}", "suma {a} y {b}"),
    "-": ("subtract {b} from {a}", "resta {b} de {a}"),
    "*": ("multiply {a} by {b}", "multiplica {a} por {b}"),
    "/": ("divide {a} by {b}", "divide {a} entre {b}"),
}
_number = st.integers(0, 10_000).map(str) | st.decimals(0, 1000, places=2).map(str)
_filler = st.sampled_from(["", "what is ", "please ", "¿cuánto es ", "hey, ", "calcula "])
_joiner = st.sampled_from([" and ", ", then ", " and then ", " y ", " y luego ", " "])


@st.composite
def chained_requests(draw: st.DrawFn) -> str:
    operator = draw(st.sampled_from("+-*/"))
    first = draw(st.sampled_from(_FIRST_WORDS[operator]))
    text = draw(_filler) + first.format(a=draw(_number), b=draw(_number))
    for _ in range(draw(st.integers(0, 4))):
        step = draw(st.sampled_from(sorted(_STEP_WORDS)))
        text += draw(_joiner) + draw(st.sampled_from(_STEP_WORDS[step])) + " " + draw(_number)
    return text + draw(st.sampled_from(["", "?", ".", " and 7 more", " for my 3 kids"]))


def _python_value(expression: str) -> float:
    # The reference: Python's own arithmetic on the same expression (test input only).
    names = {"sqrt": math.sqrt, "factorial": math.factorial}
    return float(eval(expression, {"__builtins__": {}}, names))


@given(chained_requests())
def test_a_found_calculation_is_the_whole_request_and_python_agrees(message: str) -> None:
    found = find_calculation(message)
    if found is None:
        return
    # Every number written in the message is in the expression: no partial answers.
    assert uses_every_number(found.expression, message.replace(",", ""))
    try:
        value = evaluate(found.expression)
    except CalculationError:
        assert found.refusal
        with pytest.raises(ZeroDivisionError):
            _python_value(found.expression)
        return
    assert not found.refusal
    assert math.isclose(float(value), _python_value(found.expression), rel_tol=1e-9)


@pytest.mark.parametrize(
    ("message", "value"),
    [
        ("divide 144 by 12 and add 5", 17),
        ("Multiply 25 by 4, then subtract 30.", 70),
        ("Add 17 and 26, then multiply by 3.", 129),
        ("Divide 90 entre 3 y suma 12.", 42),
    ],
)
def test_chains_are_computed_whole(message: str, value: float) -> None:
    found = find_calculation(message)
    assert found is not None and evaluate(found.expression) == value


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


async def test_a_refused_calculation_is_answered_with_the_reason(redis_client, redis_url) -> None:
    model = ScriptedChatModel()
    answer, events = await run(agent(model, redis_url), "what is 1 / 0?")
    assert answer == "I can't calculate 1 / 0: division by zero."
    assert [(e.name, e.ok) for e in events if e.finished] == [("calculator", False)]
    assert model.calls == []  # the model never gets the chance to invent a number
