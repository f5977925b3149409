"""Spotting a written-out calculation in a message, so the calculator runs without a guess.

Small local models rarely decide to call a tool on their own (`benchmarks/tool_eval.py`
measures it), yet "what is 37 * 91 + 5?" plainly needs the calculator and the model's
own arithmetic is usually wrong. When a message contains an expression the calculator
accepts, with an explicit operator, the agent calls the calculator with it directly.
When the message is that calculation and little else ("what is 37 * 91 + 5?"), the
calculator's line ("37 * 91 + 5 = 3372") is the answer: a 135M model asked to restate
a result it was just given still gets the number wrong. Otherwise the model answers
from the result.

Operators written as words between two numbers, in English and Spanish ("37 times 91",
"999 más 1001", "2 to the power of 20", "the square root of 7569", "12 factorial",
"15% of 860"), are read as symbols first (`_WORD_OPERATORS`), and so are chains of
steps led by verbs ("divide 144 by 12 and add 5", "suma 45 y 55 y divide entre 4",
`agent_graph.word_chains`). Word problems that need reading ("3 boxes of 144 pens, give
away 59") are left to the model: guessing those is where a detector goes wrong.

Never a partial answer: the expression found must use every number in the message, or
there is no calculation (a confident number for half the question is worse than none).
A calculation the calculator refuses (division by zero, too large, outside a function's
domain) is still found, with the reason, so the person is told why instead of getting
a number the model made up.

The detector errs on the side of not firing: dates (2026-11-28), ranges (10-20),
fractions and times (1/2, 24/7) are not calculations, so a `-` or `/` counts as an
operator only with spaces around it; a bare `%` is left out (percent or modulo?), and
so is `x` for times (1920 x 1080 is a screen size).
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from dataclasses import dataclass

from agent_graph.errors import ToolError
from agent_graph.tools.arithmetic import CONSTANTS, FUNCTIONS, MAX_EXPRESSION_CHARS, evaluate
from agent_graph.word_chains import find_chain
from agent_graph.word_problems import find_word_problem

# Not the constant `e`: a lone letter e in a sentence is rarely Euler's number.
_NAMES = "|".join(sorted((*FUNCTIONS, *(c for c in CONSTANTS if c != "e")), key=len, reverse=True))
# A run of numbers, operators, parentheses, spaces and the calculator's function names.
_CANDIDATE = re.compile(rf"(?:\d+(?:\.\d+)?|\*\*|[-+*/×÷^()]|\b(?:{_NAMES})\b|[ \t])+")
# 1,234,567 -> 1234567 (a comma between digit groups is a thousands separator).
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")
_STRONG_OPERATOR = re.compile(r"\*|×|÷|\^|\+|\s[-/]\s")
_FUNCTION_CALL = re.compile(rf"\b(?:{'|'.join(FUNCTIONS)})\s*\(")

_NUMBER = r"(\d+(?:\.\d+)?)"
# Operators spelled out, each only where it stands between (or next to) numbers.
_WORD_OPERATORS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (rf"{_NUMBER}\s*(?:%|percent|per ?cent|por ?ciento) (?:of|de) {_NUMBER}", r"\1 / 100 * \2"),
        (rf"\b(?:the )?square root of {_NUMBER}", r"sqrt(\1)"),
        (rf"\bra[ií]z cuadrada de {_NUMBER}", r"sqrt(\1)"),
        (rf"{_NUMBER} factorial\b", r"factorial(\1)"),
        (
            rf"\b(?:raise|eleva) {_NUMBER} (?:to|a)(?: the| la)? (?:power|potencia)(?: of| de)? "
            rf"{_NUMBER}",
            r"\1 ** \2",
        ),
        (rf"\bfactorial (?:of|de) {_NUMBER}", r"factorial(\1)"),
        (
            r"(?<=\d) (?:to the power(?: of)?|raised to(?: the power(?: of)?)?|"
            r"elevado a(?: la(?: potencia)?)?) (?=\d)",
            " ** ",
        ),
        (r"(?<=\d) (?:times|multiplied by|por|multiplicado por) (?=\d)", " * "),
        (r"(?<=\d) (?:divided by|dividido (?:por|entre)|entre) (?=\d)", " / "),
        (r"(?<=\d) (?:plus|m[aá]s) (?=\d)", " + "),
        (r"(?<=\d) (?:minus|menos) (?=\d)", " - "),
    )
)


def _symbols_for_words(text: str) -> str:
    # Twice: "37 por 91 más 5" has its second operator next to the first one's number,
    # which a single pass has already consumed for a few of the patterns.
    for _ in range(2):
        for pattern, replacement in _WORD_OPERATORS:
            text = pattern.sub(replacement, text)
    return text


def _normalized(candidate: str) -> str:
    return candidate.replace("×", "*").replace("÷", "/").replace("^", "**").strip()


def _is_calculation(expression: str) -> bool:
    """At least one operation on numbers, not a lone (possibly signed) number."""
    try:
        tree = ast.parse(expression, mode="eval").body
    except SyntaxError:
        return False
    while isinstance(tree, ast.UnaryOp):
        tree = tree.operand
    return isinstance(tree, ast.BinOp | ast.Call)


# "What is", "¿Cuánto es", "calcula", "please compute": a few words around a calculation
# ask for nothing else; nor do more of them when each only asks for a result.
MAX_WORDS_AROUND = 4
_ASKING = """
    what whats is are do does you get if i the a result answer and then give me tell
    please can could would work out calculate compute for how much many equals equal
    quick one solve value of to
    qué que cuánto cuanto cuánta es son me da dime el la resultado calcula calcúlame
    calculas puedes por favor y luego cuál cual valor de sale
"""
_ASKING_WORDS = frozenset(_ASKING.split())


_NUMBERS = re.compile(r"\d+(?:\.\d+)?")


def uses_every_number(expression: str, message: str) -> bool:
    """Whether each number written in `message` appears in `expression` (as often)."""
    wanted = Counter(_NUMBERS.findall(message))
    return not wanted - Counter(_NUMBERS.findall(expression))


@dataclass(frozen=True)
class Calculation:
    expression: str  # for the calculator: `×` `÷` `^` spelled as Python operators
    whole_message: bool  # the message asks for this calculation and nothing else
    refusal: str = ""  # why the calculator refuses it; "" when it has a value


def _asks_only_for_it(text: str, raw: str) -> bool:
    """Whether the words of `text` around the calculation `raw` ask for its result only."""
    words = re.findall(r"\w+", text.replace(raw, " ", 1).lower())
    return len(words) <= MAX_WORDS_AROUND or all(word in _ASKING_WORDS for word in words)


# "to 4 decimal places", "con 3 decimales": the result rounded, the count not an operand.
_DECIMAL_PLACES = re.compile(
    r"\s*,?\s*\b(?:to|with|rounded\s+to|a|con)\s+(\d{1,2})\s+"
    r"(?:decimal\s+places|decimals|decimales|cifras\s+decimales|d[ií]gitos\s+decimales)\b",
    re.IGNORECASE,
)


def find_calculation(message: str) -> Calculation | None:
    """The one calculation in `message` that uses all its numbers, or None (also when
    there are several)."""
    text = _THOUSANDS.sub("", message)
    places = _DECIMAL_PLACES.search(text)
    if places is not None:
        text = text[: places.start()] + text[places.end() :]
    chain = find_chain(text)
    if chain is not None:
        raw, expression = chain
        found = [(raw, expression, text)]
    else:
        spelled = _symbols_for_words(text)
        found = [(raw, expression, spelled) for raw, expression in _candidates(spelled)]
    if len(found) != 1 or not uses_every_number(found[0][1], text):
        # Not one calculation written out: perhaps a word problem, read whole.
        problem = find_word_problem(text)
        if problem is None:
            return None
        # Its answer is the calculator's line: the words asked for that number alone.
        found = [(problem[0], problem[1], "")]
    [(raw, expression, read)] = found
    if places is not None:
        expression = f"round({expression}, {places.group(1)})"
    refusal = ""
    try:
        evaluate(expression)
    except ToolError as exc:
        refusal = str(exc)
    return Calculation(expression, _asks_only_for_it(read, raw), refusal)


def _candidates(text: str) -> list[tuple[str, str]]:
    """Each run of `text` that reads as a calculation: (as written, as an expression)."""
    found: list[tuple[str, str]] = []
    for match in _CANDIDATE.finditer(text):
        raw = match.group().strip()
        if not any(ch.isdigit() for ch in raw) or len(raw) > MAX_EXPRESSION_CHARS:
            continue
        # A function call such as sqrt(2) is explicit enough without an operator.
        if not (_STRONG_OPERATOR.search(raw) or _FUNCTION_CALL.search(raw)):
            continue
        expression = _normalized(raw)
        if _is_calculation(expression):
            found.append((raw, expression))
    return found
