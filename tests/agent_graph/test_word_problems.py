"""Word problems, powers and rounding go to the calculator whole, or not at all; what it
cannot read is answered by the model under a note, never by a web search."""

from __future__ import annotations

import asyncio
import math
import re
from fractions import Fraction

import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent, TurnSettings
from agent_graph.arithmetic_intent import find_calculation
from agent_graph.tool_router import ToolRouter
from agent_graph.tools.arithmetic import evaluate, format_number
from agent_graph.tools.base import ToolContext
from agent_graph.tools.calculator import Calculator, CalculatorArgs
from agent_graph.word_problems import looks_like_word_problem
from tests.agent_graph.turns import run
from tests.fakes import ScriptedChatModel


@pytest.mark.parametrize(
    ("message", "value"),
    [
        ("If I have 17 apples and give away 5, then buy 12 more, how many do I have?", 24),
        ("Raise 37 to the power 0.4", 37**0.4),
        ("Compute the square root of 2 to 4 decimal places", 1.4142),
        ("¿Cuál es la raíz cuadrada de 2 con 3 decimales?", 1.414),
        ("37 elevado a la 0.4", 37**0.4),
        ("If I have 3 boxes of 144 pens and give away 59, how many are left?", 373),
        ("Si compro 7 entradas a 23 euros cada una, ¿cuánto pago?", 161),
        ("Tengo 3 cajas de 12 huevos y uso la mitad, ¿cuántos quedan?", 18),
        ("Tengo 20 caramelos, regalo 4 y compro 10 más. ¿Cuántos tengo?", 26),
        ("I had 50 euros, spent 12 on lunch and then earned 30. How much do I have?", 68),
        ("A class has 24 students and each brings 3 pencils. How many pencils in total?", 72),
        ("We have 120 cookies to share among 8 kids, how many does each get?", 15),
        ("I have 40 stickers and Tom gives me 15, how many do I have now?", 55),
        ("Tengo 8 libros y mi hermana me regala 4, ¿cuántos tengo?", 12),
        ("I have 30 marbles and double them, how many do I have?", 60),
        ("What is 20 percent of 150?", 30),
    ],
)
def test_word_problems_are_computed_whole(message: str, value: float) -> None:
    found = find_calculation(message)
    assert found is not None, message
    assert found.whole_message
    assert math.isclose(float(evaluate(found.expression)), value, rel_tol=1e-9)


@pytest.mark.parametrize(
    "message",
    [
        # Parts the reader cannot place: the calculator must not answer half of it.
        "I have 5 apples and my friend has 3 more than me and gives 2 to Ann, how many?",
        "If I have 17 apples and give 5 to Tom and 3 to Ann, how many do I have?",
        "Tengo 10 euros y mi hermano tiene 3 veces más que el de Ana, ¿cuánto tenemos?",
        "I bought 3 shirts at 12 euros and 2 hats at 8 euros, how much did I spend?",
    ],
)
def test_problems_it_cannot_read_whole_are_left_with_a_note(message: str) -> None:
    assert find_calculation(message) is None
    assert looks_like_word_problem(message)


@pytest.mark.parametrize(
    "message",
    [
        "How many people came to the 2024 meetup and the 2025 one?",
        "How many kilograms of potatoes were harvested in 2025?",
        "¿Cuántos kilómetros tiene la ruta larga?",
        "What happened in 1989 and 1991?",
    ],
)
def test_questions_with_numbers_are_not_word_problems(message: str) -> None:
    assert find_calculation(message) is None
    assert not looks_like_word_problem(message)


# Steps a generated problem is told in, with what each does to the running count.
_TAKE = ("give away {n}", "lose {n}", "eat {n}", "regalo {n}", "pierdo {n}", "gasto {n}")
_ADD = ("buy {n} more", "find {n}", "get {n} more", "compro {n} más", "encuentro {n}")
_FACTOR = {"double them": 2, "el doble": 2, "triple them": 3}
_HALF = ("half of them", "la mitad")
_small = st.integers(1, 500)


@st.composite
def word_problems(draw: st.DrawFn) -> tuple[str, Fraction]:
    """A problem and its value, computed here from the steps, not from any expression."""
    start = draw(_small)
    if draw(st.booleans()):
        boxes = draw(st.integers(1, 20))
        text, value = f"I have {boxes} boxes of {start} pens", Fraction(boxes * start)
    else:
        text, value = (
            draw(st.sampled_from(("I have {n}", "Tengo {n}"))).format(n=start),
            Fraction(start),
        )
    for _ in range(draw(st.integers(1, 4))):
        joiner = draw(st.sampled_from((", ", " and ", ", then ", " y ", " y luego ")))
        kind = draw(st.sampled_from(("take", "add", "factor", "half")))
        n = draw(_small)
        if kind == "take":
            text += joiner + draw(st.sampled_from(_TAKE)).format(n=n)
            value -= n
        elif kind == "add":
            text += joiner + draw(st.sampled_from(_ADD)).format(n=n)
            value += n
        elif kind == "factor":
            phrase = draw(st.sampled_from(sorted(_FACTOR)))
            text += joiner + phrase
            value *= _FACTOR[phrase]
        else:
            text += joiner + draw(st.sampled_from(_HALF))
            value /= 2
    ask = draw(st.sampled_from((", how many do I have?", ". ¿Cuántos quedan?", ", how many left?")))
    return text + ask, value


@given(word_problems())
def test_a_word_problem_is_computed_to_its_own_value(problem: tuple[str, Fraction]) -> None:
    message, value = problem
    found = find_calculation(message)
    assert found is not None, message
    assert math.isclose(float(evaluate(found.expression)), float(value), rel_tol=1e-9)


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def _python_value(expression: str) -> float:
    # The reference: Python's own arithmetic on the expression shown (test input only).
    names = {"sqrt": math.sqrt, "factorial": math.factorial, "round": round}
    return float(eval(expression, {"__builtins__": {}}, names))


@given(word_problems() | st.sampled_from(["Raise 37 to the power 0.4", "sqrt(2) to 5 decimals"]))
def test_every_number_the_calculator_states_is_pythons_value_of_what_it_shows(
    problem: tuple[str, Fraction] | str,
) -> None:
    message = problem if isinstance(problem, str) else problem[0]
    found = find_calculation(message)
    assert found is not None, message
    arguments = CalculatorArgs(expression=found.expression)
    line = asyncio.run(Calculator().run(arguments, ToolContext()))
    shown, _, stated = line.rpartition(" = ")
    assert shown == found.expression
    # The line states one number, and it is Python's value of the expression it shows.
    [number] = _NUMBER.findall(stated)
    assert stated == format_number(evaluate(shown))
    assert math.isclose(float(number), _python_value(shown), rel_tol=1e-11, abs_tol=1e-12)


async def test_a_problem_it_cannot_read_goes_to_the_model_with_a_note_and_no_search() -> None:
    router = ToolRouter()
    message = "If I have 17 apples and give 5 to Tom and 3 to Ann, how many do I have?"
    route = await router.route(message, ("calculator", "web_search"), "")
    assert (route.tool, route.reason) == ("none", "unchecked_arithmetic")


async def test_the_models_unchecked_number_is_introduced_as_such(
    redis_client: aioredis.Redis, redis_url: str
) -> None:
    saver = AsyncRedisSaver(client=aioredis.from_url(redis_url, decode_responses=False))
    model = ScriptedChatModel()
    model.enqueue("You have 9 apples.")
    agent = Agent(model, saver)
    settings = TurnSettings("Be brief.", {}, tools=("calculator", "web_search"))
    message = "If I have 17 apples and give 5 to Tom and 3 to Ann, how many do I have?"
    answer, _ = await run(agent, message, settings)
    assert answer.startswith("(I couldn't turn this into a calculation")
    assert answer.endswith("You have 9 apples.")
    history = await agent.history("t")
    assert not any(getattr(m, "tool_calls", None) for m in history)
