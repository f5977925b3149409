"""Calculations written as steps led by verbs: "divide 144 by 12 and add 5",
"multiply 25 by 4, then subtract 30", "suma 45 y 55 y divide entre 4".

The first step names two numbers ("divide A by B", "subtract A from B", "resta A de B");
each later step applies one operation to the result so far ("and add C", "then multiply
by C", "y luego resta C"). The chain is read whole and written as one expression with
the parentheses its order needs ("(17 + 26) * 3"), so the calculator computes all of it.
A step that is not understood ends the chain; `agent_graph.arithmetic_intent` then finds
the numbers it left out and declines the whole message rather than answer part of it.
"""

from __future__ import annotations

import re
from typing import Final

_FLAGS = re.IGNORECASE | re.UNICODE
_N = r"(\d+(?:\.\d+)?)"

# (pattern, expression template): the two numbers in the order the verb applies them.
_FIRST: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern, _FLAGS), template)
    for pattern, template in (
        (rf"\bdivid[ea]\s+{_N}\s+(?:by|entre|por)\s+{_N}", "{0} / {1}"),
        (rf"\bmultiply\s+{_N}\s+(?:by|and|times)\s+{_N}", "{0} * {1}"),
        (rf"\bmultiplica\s+{_N}\s+(?:por|y)\s+{_N}", "{0} * {1}"),
        (rf"\b(?:add|sum)\s+(?:up\s+)?{_N}\s+(?:and|to|plus)\s+{_N}", "{0} + {1}"),
        (rf"\bsuma\s+{_N}\s+(?:y|a|m[aá]s|con)\s+{_N}", "{0} + {1}"),
        (rf"\b(?:subtract|take(?:\s+away)?)\s+{_N}\s+from\s+{_N}", "{1} - {0}"),
        (rf"\bresta\s+{_N}\s+(?:a|de)\s+{_N}", "{1} - {0}"),
    )
)

_THEN = r"\s*,?\s*(?:(?:and\s+then|then|and|y\s+luego|y\s+despu[eé]s|luego|despu[eé]s|y)\s+)?"
_IT = r"(?:\s+(?:it|that|the\s+result|el\s+resultado))?"
_STEPS: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(_THEN + pattern + rf"\s+{_N}\b", _FLAGS), operator)
    for pattern, operator in (
        (r"(?:add|plus|s[uú]ma(?:le)?|m[aá]s)", "+"),
        (r"(?:subtract|minus|take\s+away|r[eé]sta(?:le)?|menos)", "-"),
        (rf"(?:multiply{_IT}\s+by|times|multipl[ií]ca(?:lo)?\s+por)", "*"),
        (rf"(?:divide{_IT}\s+by|div[ií]de(?:lo)?\s+(?:entre|por))", "/"),
    )
)


def applied(expression: str, operator: str, number: str) -> str:
    # Steps run in the order written: a product after a sum needs the sum in parentheses.
    if operator in "*/" and (" + " in expression or " - " in expression):
        expression = f"({expression})"
    return f"{expression} {operator} {number}"


def find_chain(text: str) -> tuple[str, str] | None:
    """The first verb-led chain in `text`: (the words it spans, the expression)."""
    first = min(
        ((pattern.search(text), template) for pattern, template in _FIRST),
        key=lambda found: found[0].start() if found[0] else len(text) + 1,
    )
    match, template = first
    if match is None:
        return None
    expression = template.format(*match.groups())
    start, end = match.start(), match.end()
    while True:
        step = next(
            (
                (found, operator)
                for pattern, operator in _STEPS
                if (found := pattern.match(text, end)) is not None
            ),
            None,
        )
        if step is None:
            return text[start:end], expression
        found, operator = step
        expression = applied(expression, operator, found.group(1))
        end = found.end()
