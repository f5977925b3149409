"""The calculator: agrees with Python's arithmetic on safe input, refuses the rest fast.

"Fast" is asserted through the bounds (every hostile input is refused before any big
number is built, and tracemalloc shows no large allocation), not through wall-clock
time; the one clock check is a generous guard against a hang.
"""

from __future__ import annotations

import math
import time
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent_graph.tools.arithmetic import (
    MAX_EXPRESSION_CHARS,
    CalculationError,
    evaluate,
    format_number,
)
from agent_graph.tools.base import ToolContext
from agent_graph.tools.calculator import Calculator, CalculatorArgs

# -- agreement with Python on safe inputs ------------------------------------------------

small_ints = st.integers(min_value=-10_000, max_value=10_000)
# No tiny non-zero floats: dividing by 1e-308 overflows an intermediate result, which
# the calculator refuses while Python carries the infinity on (e.g. 0 / (4 / 1e-308)).
small_floats = st.floats(
    min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False
).filter(lambda value: value == 0 or abs(value) >= 1e-6)


def _literal(value: int | float) -> str:
    return f"({value!r})" if value < 0 else repr(value)


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    """Random expressions over + - * / // % with small operands, and some parentheses."""
    if depth >= 3 or draw(st.booleans()):
        return _literal(draw(small_ints | small_floats))
    left = draw(expressions(depth + 1))
    right = draw(expressions(depth + 1))
    operator = draw(st.sampled_from(["+", "-", "*", "/", "//", "%"]))
    text = f"{left} {operator} {right}"
    return f"({text})" if draw(st.booleans()) else text


@settings(max_examples=300, deadline=None)
@given(expressions())
def test_agrees_with_python_on_safe_expressions(expression: str) -> None:
    try:
        expected = eval(expression, {"__builtins__": {}})  # trusted: generated above
    except ZeroDivisionError:
        with pytest.raises(CalculationError, match="division by zero"):
            evaluate(expression)
        return
    except OverflowError:
        with pytest.raises(CalculationError):
            evaluate(expression)
        return
    if isinstance(expected, float) and not math.isfinite(expected):
        with pytest.raises(CalculationError):
            evaluate(expression)
        return
    assert evaluate(expression) == expected


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=-50, max_value=50), st.integers(min_value=0, max_value=60))
def test_integer_powers_are_exact(base: int, exponent: int) -> None:
    assert evaluate(f"({base}) ** {exponent}") == base**exponent
    assert evaluate(f"({base}) ^ {exponent}") == base**exponent  # what people type


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=170))
def test_factorial_matches_math(n: int) -> None:
    assert evaluate(f"factorial({n})") == math.factorial(n)


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0.001, max_value=1e6))
def test_functions_match_math(x: float) -> None:
    assert evaluate(f"sqrt({x!r})") == math.sqrt(x)
    assert evaluate(f"log({x!r})") == math.log(x)
    assert evaluate(f"sin({x!r}) + cos({x!r})") == math.sin(x) + math.cos(x)
    assert evaluate(f"floor({x!r}) + ceil({x!r})") == math.floor(x) + math.ceil(x)


@pytest.mark.parametrize(
    ("expression", "value"),
    [
        ("37 * 91 + 5", 3372),
        ("-(2 + 3) * +4", -20),
        ("2 ** -2", 0.25),
        ("2 ^ 3 ^ 2", 512),  # right-associative, like **
        ("7 // 2 + 7 % 2", 4),
        ("pi", math.pi),
        ("e ** 1", math.e),
        ("log(8, 2)", 3.0),
        ("round(2.567, 2)", 2.57),
        ("3 × 4 ÷ 2", 6.0),
        ("comb(5, 2) + perm(5, 2) + gcd(12, 18) + lcm(4, 6)", 10 + 20 + 6 + 12),
        ("max(1, 5, 3) - min(4, 2) + abs(-3)", 6),
    ],
)
def test_known_values(expression: str, value: float) -> None:
    assert evaluate(expression) == pytest.approx(value)


def test_numbers_are_formatted_for_people() -> None:
    assert format_number(evaluate("0.1 + 0.2")) == "0.3"
    assert format_number(evaluate("10 / 2")) == "5"
    assert format_number(evaluate("2 ** 70")) == str(2**70)
    assert format_number(evaluate("1 / 3")) == "0.333333333333"


# -- hostile and broken input ------------------------------------------------------------

HOSTILE = [
    ("9**9**9**9", "exponent"),
    ("factorial(10**6)", "factorial"),
    ("(" * 200 + "1" + ")" * 200, "nested"),
    ("-" * 400 + "1", "nested"),
    ("1+" * 5000 + "1", "limit"),
    ("__import__('os')", "not an allowed function"),
    ("().__class__.__bases__[0].__subclasses__()", "not allowed"),
    ("open('/etc/passwd').read()", "not allowed"),
    ("open('/etc/passwd')", "not an allowed function"),
    ("lambda: 1", "not allowed"),
    ("x + 1", "unknown name"),
    ("'a' * 10", "not a number"),
    ("10 ** 100000", "exponent"),
    ("2 ** 5000", "1000 digits"),
    ("(10 ** 999) * (10 ** 999)", "1000 digits"),
    ("comb(10**6, 5 * 10**5)", "comb"),
    ("round(1, -10 ** 9)", "round"),
    ("10 ** 1000 / 3", "too large"),
    ("1e308 * 10", "finite"),
    ("(-8) ** (1/3)", "complex"),
    ("1 / 0", "division by zero"),
    ("0 ** -1", "division by zero"),
    ("sqrt(-1)", "outside the function's domain"),
    ("log(0)", "outside the function's domain"),
    ("factorial(2.5)", "whole number"),
    ("True + 1", "not a number"),
    ("", "empty"),
    ("2 +", "not an arithmetic expression"),
    ("1 if 1 else 2", "not allowed"),
    ("sqrt(x=4)", "keyword"),
]


@pytest.mark.parametrize(("expression", "message"), HOSTILE)
def test_hostile_input_is_a_readable_error_without_big_allocations(
    expression: str, message: str
) -> None:
    tracemalloc.start()
    started = time.monotonic()
    try:
        with pytest.raises(CalculationError, match=message):
            evaluate(expression)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # bytes: nothing like a huge integer was ever built
    assert time.monotonic() - started < 2.0  # a guard against hangs, not a benchmark


def test_input_length_is_bounded_before_parsing() -> None:
    with pytest.raises(CalculationError, match=str(MAX_EXPRESSION_CHARS)):
        evaluate("1" * (10 * 1024))


async def test_tool_reports_expression_and_value() -> None:
    tool = Calculator()
    result = await tool.run(CalculatorArgs(expression=" 37 * 91 + 5 "), ToolContext())
    assert result == "37 * 91 + 5 = 3372"
    assert tool.schema()["function"]["parameters"]["required"] == ["expression"]
