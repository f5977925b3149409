"""Word problems with small arithmetic, read whole or not at all, in English and Spanish:
"If I have 17 apples and give away 5, then buy 12 more, how many do I have?",
"Tengo 3 cajas de 12 huevos y uso la mitad, ¿cuántos quedan?".

The message is cut into clauses (at commas, "and", "then", "y", "luego"); the first
clause with a number sets the starting quantity ("I have 17", "3 boxes of 144 pens",
"7 tickets at 23 euros each"), and each later clause applies one operation named by
its words: give away / lose / spend / sell / eat ... subtract; buy / get / find / more
... add; twice, double, triple, half, "N times", "each", "per" multiply or divide;
"share among N" divides. Every number must be consumed by a clause and every clause
with a number understood, or nothing is returned: `looks_like_word_problem` then tells
the agent that the message asks for a number it could not compute, so the model
answers with a note that its result is unchecked (never a web search, which would
only find a page of arithmetic).
"""

from __future__ import annotations

import re
from typing import Final

from agent_graph.word_chains import applied

_FLAGS = re.IGNORECASE | re.UNICODE
_N = r"(\d+(?:\.\d+)?)"

# The question asks for a quantity.
ASKS_QUANTITY: Final = re.compile(
    r"\bhow\s+(?:many|much)\b|\bin\s+total\b|\b(?:left|remain(?:s|ing)?)\b"
    r"|\bcu[aá]nt[oa]s?\b|\ben\s+total\b|\bquedan?\b|\bsobran?\b",
    _FLAGS,
)
_CLAUSE_SPLIT: Final = re.compile(
    r"\s*(?:[,;.:]|\band\s+then\b|\bthen\b|\band\b|\by\s+luego\b|\by\s+despu[eé]s\b"
    r"|\bluego\b|\bdespu[eé]s\b|\by\b|\bpero\b|\bbut\b)\s*",
    _FLAGS,
)

_SUBTRACT = (
    r"give\s+away|gives\s+away|gave\s+away|give|gives|gave|lose|loses|lost|spend|spends|"
    r"spent|sell|sells|sold|eat|eats|ate|use|uses|used|"
    r"break|broke|take\s+away|took|remove|removed|pay|paid|drop|dropped|less|fewer|minus|"
    r"regal[oóaeé]\w*|doy|di|dio|pierd\w*|perd\w*|gast\w*|vend\w*|com[ií]|comi[oó]|"
    r"me\s+como|us[oóaé]|uso|romp\w*|quit\w*|pag[oóué]\w*|menos|sac[oóa]"
)
_ADD = (
    r"buy|bought|get|got|find|found|receive|received|add|added|earn|earned|win|won|"
    r"pick|picked|more|plus|extra|another|"
    r"compr\w*|recib\w*|encuentr\w*|encontr\w*|a[nñ]ad\w*|gan[oóa]\w*|consig\w*|"
    r"m[aá]s|otr[oa]s"
)
_DIVIDE_AMONG = r"(?:share|split|divide|shared|split|divided|reparto|repart\w*|divid\w*)"
# A clause that is only a factor: "twice as many", "el doble", "half of them".
_FACTORS: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern, _FLAGS), operation)
    for pattern, operation in (
        (r"\b(?:twice|double|doubles|doubled|el\s+doble|duplic\w*)\b", "* 2"),
        (r"\b(?:triple|triples|tripled|el\s+triple|triplic\w*)\b", "* 3"),
        (r"\b(?:half|halve|halves|la\s+mitad)\b", "/ 2"),
    )
)
_START_PRODUCT: Final = (
    re.compile(rf"{_N}\s+[^\d,;.]{{0,30}}?\b(?:of|de|con)\s+{_N}\b", _FLAGS),
    re.compile(
        rf"{_N}\s+[^\d,;.]{{0,30}}?\b(?:at|for|a|por)\s+{_N}\s*[^\d,;.]{{0,20}}?"
        rf"\b(?:each|apiece|cada\s+un[oa]|la\s+unidad|per\s+\w+)\b",
        _FLAGS,
    ),
)
_ONE_NUMBER: Final = re.compile(_N)
_TIMES: Final = re.compile(rf"{_N}\s+(?:times|veces)\b", _FLAGS)
_AMONG: Final = re.compile(
    rf"\b{_DIVIDE_AMONG}\b.*?\b(?:among|between|by|into|entre|en)\s+{_N}\b", _FLAGS
)
_EACH: Final = re.compile(rf"{_N}\s+[^\d]{{0,30}}?\b(?:each|apiece|cada\s+un[oa])\b", _FLAGS)
_EACH_BEFORE: Final = re.compile(rf"\b(?:each|every|cada)\b[^\d]{{0,30}}?{_N}", _FLAGS)
# "Tom gives me 5", "me regalan 3": the asker receives.
_RECEIVES: Final = re.compile(
    r"\b(?:gives?|gave|hands?|handed)\s+me\b|\bme\s+(?:d[aio]\w*|regal\w*)", _FLAGS
)
_COMPARES: Final = re.compile(
    r"\bthan\b|\bas\s+(?:many|much)\b|\bm[aá]s\s+que\b|\bmenos\s+que\b|\btant[oa]s\s+como\b",
    _FLAGS,
)
_SUBTRACTS: Final = re.compile(rf"\b(?:{_SUBTRACT})\b", _FLAGS)
_ADDS: Final = re.compile(rf"\b(?:{_ADD})\b", _FLAGS)


def _start(clause: str) -> str | None:
    """The starting quantity a first clause states, as an expression."""
    for pattern in _START_PRODUCT:
        match = pattern.search(clause)
        if match is not None and len(_ONE_NUMBER.findall(clause)) == 2:
            return f"{match.group(1)} * {match.group(2)}"
    among = _AMONG.search(clause)
    if among is not None and len(_ONE_NUMBER.findall(clause)) == 2:
        return f"{_ONE_NUMBER.findall(clause)[0]} / {among.group(1)}"
    found = _ONE_NUMBER.findall(clause)
    return found[0] if len(found) == 1 else None


def _step(expression: str, clause: str) -> str | None:
    """`expression` with the operation `clause` names applied; None if not understood."""
    if _COMPARES.search(clause):
        return None  # "3 more than me": someone else's count, which needs reading
    found = _ONE_NUMBER.findall(clause)
    if not found:
        for pattern, operation in _FACTORS:
            if pattern.search(clause):
                operator, number = operation.split()
                return applied(expression, operator, number)
        return expression  # no number, no factor: a clause that only asks
    if len(found) != 1:
        return None
    [number] = found
    if _RECEIVES.search(clause):
        return applied(expression, "+", number)
    if _TIMES.search(clause) or _EACH_BEFORE.search(clause):
        return applied(expression, "*", number)
    if _AMONG.search(clause):
        return applied(expression, "/", number)
    if _EACH.search(clause) and not _SUBTRACTS.search(clause):
        return applied(expression, "*", number)
    subtracts, adds = _SUBTRACTS.search(clause), _ADDS.search(clause)
    if subtracts and not adds:
        return applied(expression, "-", number)
    if adds and not subtracts:
        return applied(expression, "+", number)
    if subtracts and adds and subtracts.start() < adds.start():
        # "gives away 5 more" / "regala 5 más": the verb decides.
        return applied(expression, "-", number)
    if subtracts and adds:
        return applied(expression, "+", number)
    return None


def clauses(text: str) -> list[str]:
    return [piece for piece in _CLAUSE_SPLIT.split(text) if piece and piece.strip()]


def find_word_problem(text: str) -> tuple[str, str] | None:
    """(the text read, the expression) for a word problem read whole; None otherwise."""
    if not looks_like_word_problem(text):
        return None
    expression: str | None = None
    for clause in clauses(text):
        if expression is None:
            if _ONE_NUMBER.search(clause):
                expression = _start(clause)
                if expression is None:
                    return None
            continue
        expression = _step(expression, clause)
        if expression is None:
            return None
    if expression is None or not re.search(r"[-+*/]", expression):
        return None
    return text, expression


def looks_like_word_problem(text: str) -> bool:
    """Whether `text` asks for a quantity from numbers it gives, with a word that names
    an operation: a calculation, whether or not it can be read."""
    if ASKS_QUANTITY.search(text) is None:
        return False
    count = len(_ONE_NUMBER.findall(text))
    factor = any(pattern.search(text) for pattern, _ in _FACTORS)
    if count < 2 and not (count == 1 and factor):
        return False
    cues = (_SUBTRACTS, _ADDS, _RECEIVES, _TIMES, _AMONG, _EACH, _EACH_BEFORE, *_START_PRODUCT)
    return factor or any(cue.search(text) for cue in cues)
