"""A safe arithmetic evaluator: Python's own parser, a whitelist of AST nodes, and bounds.

Models send whatever text they like, and people can steer a model into sending
`__import__('os')` or `9**9**9**9`. `eval`, `sympify` and unrestricted `numexpr` run
such text (or try to compute a number with billions of digits). Here only numbers,
`+ - * / // % **`, unary signs, parentheses, a list of `math` functions and the
constants `pi`, `e`, `tau` are accepted, and every step that could grow without limit is
checked *before* it is computed: the input's length and nesting, exponents, factorial
and comb/perm arguments, and the size of every intermediate integer. Anything else is a
`CalculationError` whose text tells the model what to change.
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable
from typing import Final

from agent_graph.errors import ToolError

Number = int | float

MAX_EXPRESSION_CHARS: Final = 500
MAX_NESTING: Final = 30  # parentheses and AST depth
MAX_INT_BITS: Final = 3400  # about 1000 decimal digits
MAX_EXPONENT: Final = 10_000
MAX_FACTORIAL: Final = 450  # 450! has 1001 digits
MAX_COMB_ARGUMENT: Final = 10_000
MAX_ROUND_DIGITS: Final = 100


class CalculationError(ToolError):
    """The expression is not allowed or has no finite numeric value."""


def _checked(value: object) -> Number:
    """`value` if it is a real number within bounds; CalculationError otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        if isinstance(value, complex):
            raise CalculationError("the result is a complex number; only real numbers work")
        raise CalculationError(f"the result is not a number ({type(value).__name__})")
    if isinstance(value, int):
        if value.bit_length() > MAX_INT_BITS:
            raise CalculationError("the result has more than 1000 digits; use smaller numbers")
        return value
    if not math.isfinite(value):
        raise CalculationError("the result is not a finite number (too large, or undefined)")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if isinstance(base, int) and isinstance(exponent, int):
        if abs(exponent) > MAX_EXPONENT and abs(base) > 1:
            raise CalculationError(f"exponents above {MAX_EXPONENT} are not supported")
        if exponent > 0 and (abs(base).bit_length() - 1) * exponent > MAX_INT_BITS:
            raise CalculationError("the result has more than 1000 digits; use smaller numbers")
    if base == 0 and exponent < 0:
        raise CalculationError("division by zero (zero to a negative power)")
    return _checked(base**exponent)


def _factorial(value: Number) -> Number:
    whole = _whole_number("factorial", value)
    if whole < 0 or whole > MAX_FACTORIAL:
        raise CalculationError(f"factorial needs a whole number from 0 to {MAX_FACTORIAL}")
    return math.factorial(whole)


def _comb_perm(name: str, function: Callable[[int, int], int]) -> Callable[..., Number]:
    def bounded(n: Number, k: Number) -> Number:
        whole_n, whole_k = _whole_number(name, n), _whole_number(name, k)
        if not 0 <= whole_n <= MAX_COMB_ARGUMENT or whole_k < 0:
            raise CalculationError(f"{name} needs whole numbers n from 0 to {MAX_COMB_ARGUMENT}")
        return _checked(function(whole_n, min(whole_k, whole_n + 1)))

    return bounded


def _round(value: Number, digits: Number = 0) -> Number:
    places = _whole_number("round", digits)
    if abs(places) > MAX_ROUND_DIGITS:
        raise CalculationError(f"round takes at most {MAX_ROUND_DIGITS} digits")
    return round(value, places) if places else round(value)


def _log(value: Number, base: Number | None = None) -> Number:
    return math.log(value) if base is None else math.log(value, base)


def _whole_number(name: str, value: Number) -> int:
    if isinstance(value, float):
        if not value.is_integer():
            raise CalculationError(f"{name} needs a whole number (got {value!r})")
        return int(value)
    return value


def _integer_function(name: str, function: Callable[..., int]) -> Callable[..., Number]:
    def wrapped(*args: Number) -> Number:
        return function(*(_whole_number(name, arg) for arg in args))

    return wrapped


FUNCTIONS: Final[dict[str, Callable[..., Number]]] = {
    "sqrt": math.sqrt,
    "cbrt": math.cbrt,
    "exp": math.exp,
    "log": _log,
    "ln": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "atan2": math.atan2,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "degrees": math.degrees,
    "radians": math.radians,
    "hypot": math.hypot,
    "floor": math.floor,
    "ceil": math.ceil,
    "trunc": math.trunc,
    "round": _round,
    "abs": abs,
    "min": min,
    "max": max,
    "pow": _power,
    "factorial": _factorial,
    "comb": _comb_perm("comb", math.comb),
    "perm": _comb_perm("perm", math.perm),
    "gcd": _integer_function("gcd", math.gcd),
    "lcm": _integer_function("lcm", math.lcm),
}

CONSTANTS: Final[dict[str, float]] = {"pi": math.pi, "e": math.e, "tau": math.tau}

_BINARY: Final[dict[type[ast.operator], Callable[[Number, Number], Number]]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: _power,
}

_UNARY: Final[dict[type[ast.unaryop], Callable[[Number], Number]]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}

_ALLOWED = "numbers, + - * / // % ** (or ^), parentheses, pi, e and functions like sqrt, log"


def _normalize(expression: str) -> str:
    # What people and models type for "power", "times" and "divided by".
    return expression.replace("^", "**").replace("×", "*").replace("÷", "/").strip()


def _nesting(text: str) -> int:
    depth = deepest = 0
    for char in text:
        if char in "([":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]":
            depth -= 1
    return deepest


def evaluate(expression: str) -> Number:
    """The value of `expression`; CalculationError when it is not allowed or has none."""
    if len(expression) > MAX_EXPRESSION_CHARS:
        raise CalculationError(
            f"the expression is {len(expression)} characters; the limit is "
            f"{MAX_EXPRESSION_CHARS}. Split the calculation into steps"
        )
    text = _normalize(expression)
    if not text:
        raise CalculationError(f"the expression is empty; write one using {_ALLOWED}")
    if _nesting(text) > MAX_NESTING:
        raise CalculationError(f"parentheses are nested more than {MAX_NESTING} deep")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise CalculationError(
            f"{expression!r} is not an arithmetic expression; use {_ALLOWED}"
        ) from None
    try:
        return _checked(_Evaluator().visit(tree.body, 0))
    except ZeroDivisionError:
        raise CalculationError("division by zero") from None
    except OverflowError:
        raise CalculationError("the result is too large for a floating-point number") from None
    except (ValueError, TypeError) as exc:
        if "domain" in str(exc):
            raise CalculationError(
                "a value is outside the function's domain (such as the square root or "
                "logarithm of a negative number)"
            ) from None
        raise CalculationError(f"math error: {exc}") from None


class _Evaluator:
    """Walks the whitelisted part of the AST; anything else is refused."""

    def visit(self, node: ast.expr, depth: int) -> Number:
        if depth > MAX_NESTING:
            raise CalculationError(f"the expression is nested more than {MAX_NESTING} deep")
        if isinstance(node, ast.Constant):
            return self._constant(node.value)
        if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
            left = self.visit(node.left, depth + 1)
            right = self.visit(node.right, depth + 1)
            return _checked(_BINARY[type(node.op)](left, right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
            return _UNARY[type(node.op)](self.visit(node.operand, depth + 1))
        if isinstance(node, ast.Name):
            if node.id in CONSTANTS:
                return CONSTANTS[node.id]
            raise CalculationError(f"unknown name {node.id!r}; known constants: pi, e, tau")
        if isinstance(node, ast.Call):
            return self._call(node, depth)
        raise CalculationError(f"{type(node).__name__} is not allowed; use {_ALLOWED}")

    def _constant(self, value: object) -> Number:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CalculationError(f"{value!r} is not a number; use {_ALLOWED}")
        return _checked(value)

    def _call(self, node: ast.Call, depth: int) -> Number:
        if not isinstance(node.func, ast.Name):
            raise CalculationError(f"this kind of call is not allowed; use {_ALLOWED}")
        if node.func.id not in FUNCTIONS:
            raise CalculationError(
                f"{node.func.id!r} is not an allowed function; "
                f"allowed: {', '.join(sorted(FUNCTIONS))}"
            )
        if node.keywords:
            raise CalculationError("keyword arguments are not supported")
        if len(node.args) > 8:
            raise CalculationError("functions take at most 8 arguments here")
        args = [self.visit(arg, depth + 1) for arg in node.args]
        return _checked(FUNCTIONS[node.func.id](*args))


def format_number(value: Number) -> str:
    """A number as people read it: integers exactly, floats to 12 significant digits."""
    if isinstance(value, int):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.12g}"
