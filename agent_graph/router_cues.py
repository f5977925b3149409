"""Words that settle a tool choice before any similarity is measured, in English and Spanish.

Three kinds: an explicit request for a tool ("search the web for ...", "según nuestros
documentos ..."), a question that only the present can answer ("today", "latest",
"weather", "president", "precio", "hoy"), and whether a message asks anything at all.
A time word alone is weak evidence ("I read the news today" asks for nothing), so it only
counts in a message that asks something (`asks_something`).
"""

from __future__ import annotations

import re
from typing import Final

_FLAGS = re.IGNORECASE | re.UNICODE

# The community's own texts, named as such: "our handbook", "this server's rules",
# "according to the docs", "las normas de este servidor", "según nuestra guía".
_DOC_NOUNS_EN = (
    r"(?:documents?|docs|files|notes|handbook|guide(?:lines)?|manual|rules|policy|policies|"
    r"faq|wiki|readme|knowledge\s+base|kb|runbook|playbook|bylaws|code\s+of\s+conduct|"
    r"regulations)"
)
_DOC_NOUNS_ES = (
    r"(?:documentos?|archivos?|ficheros?|notas|gu[ií]a|manual|normas|reglas|pol[ií]tica|"
    r"reglamento|estatutos|base\s+de\s+conocimiento|wiki|c[oó]digo\s+de\s+conducta|"
    r"normativa)"
)
_GROUP_EN = r"(?:server|community|group|club|channel|chat)"
_GROUP_ES = r"(?:servidor|comunidad|grupo|club|canal|chat)"
EXPLICIT_DOCUMENTS: Final = re.compile(
    rf"\bour\s+(?:[\w']+\s+){{0,2}}?{_DOC_NOUNS_EN}\b"
    rf"|\bthis\s+{_GROUP_EN}'?s?\s+(?:[\w']+\s+)?{_DOC_NOUNS_EN}\b"
    rf"|\b{_DOC_NOUNS_EN}\s+(?:of|for|in)\s+this\s+{_GROUP_EN}\b"
    rf"|\b(?:according\s+to|in|check|look\s+in|search)\s+the\s+(?:uploaded\s+)?{_DOC_NOUNS_EN}\b"
    rf"|\bthe\s+(?:handbook|uploaded\s+\w+)\b"
    rf"|\bnuestr[oa]s?\s+(?:[\wáéíóúñ]+\s+){{0,2}}?{_DOC_NOUNS_ES}\b"
    rf"|\b{_DOC_NOUNS_ES}\s+de\s+(?:nuestr[oa]|est[ea])\s+{_GROUP_ES}\b"
    rf"|\bseg[uú]n\s+(?:el|la|los|las)\s+{_DOC_NOUNS_ES}\b"
    rf"|\b(?:en|mira\s+en|busca\s+en)\s+(?:el|la|los|las)\s+{_DOC_NOUNS_ES}\b"
    # "what do the rules say", "check the knowledge base", "qué dice el reglamento",
    # "las normas del grupo": the community's own texts, named with an article.
    rf"|\bwhat\s+(?:do|does)\s+the\s+{_DOC_NOUNS_EN}\s+say\b"
    rf"|\b(?:check|consult|see|per)\s+(?:the|our)\s+{_DOC_NOUNS_EN}\b"
    rf"|\bqu[eé]\s+dicen?\s+(?:el|la|los|las)\s+{_DOC_NOUNS_ES}\b"
    rf"|\b{_DOC_NOUNS_ES}\s+del\s+{_GROUP_ES}\b"
    rf"|\b(?:the|our)\s+{_GROUP_EN}\s+{_DOC_NOUNS_EN}\b",
    _FLAGS,
)

# "search the web for X", "look X up online", "google X", "busca en internet X",
# "busca X": the words before X are dropped from the query.
EXPLICIT_WEB: Final = re.compile(
    r"^\W*(?:please\s+|por\s+favor,?\s+)?(?:"
    r"(?:search|look)\s+(?:up\s+)?(?:on\s+)?(?:the\s+)?(?:web|internet|online|google)"
    r"(?:\s+(?:for|about))?"
    r"|search\s+for|google|look\s+up"
    r"|b[uú]sca(?:me|r)?\s+en\s+(?:internet|la\s+web|la\s+red|google)"
    r"|b[uú]sca(?:me)?"
    r")\b[\s:,]*",
    _FLAGS,
)
ONLINE: Final = re.compile(
    r"\b(?:online|on\s+the\s+(?:web|internet)|en\s+internet|en\s+la\s+web)\b", _FLAGS
)

TIME_CUES: Final = re.compile(
    r"\b(?:"
    # English: when, what is new, what changes daily
    r"today|tonight|tomorrow|yesterday|last\s+night|this\s+(?:week|weekend|month|year|season)|"
    r"right\s+now|at\s+the\s+moment|currently|current|latest|newest|most\s+recent|recent(?:ly)?|"
    r"news|headlines?|weather|forecast|rain|snow|temperature|"
    r"prices?|cost|exchange\s+rate|stock|score|who\s+won|released|"
    r"president|prime\s+minister|ceo|mayor|showing\s+in|"
    # Spanish
    r"hoy|esta\s+noche|mañana|ayer|anoche|esta\s+semana|este\s+fin\s+de\s+semana|"
    r"este\s+mes|este\s+año|ahora(?:\s+mismo)?|en\s+este\s+momento|actual(?:es|mente)?|"
    r"[uú]ltim[oa]s?|recientes?|noticias|titulares|tiempo\s+har[aá]|clima|pron[oó]stico|"
    r"llover|lluvia|nevar|calor|precios?|cuesta|cotizaci[oó]n|gan[oó]|partido|"
    r"presidente|presidenta|primer\s+ministro|primera\s+ministra|estren[oó]|estreno|salido"
    r")\b",
    _FLAGS,
)

_QUESTION_WORDS: Final = re.compile(
    r"^\W*(?:who|what|what's|whats|when|where|which|how|is|are|was|were|will|has|have|did|"
    r"does|do|can|could|any|find|tell\s+me|qui[eé]n(?:es)?|qu[eé]|cu[aá]l(?:es)?|cu[aá]ndo|"
    r"d[oó]nde|c[oó]mo|cu[aá]nt[oa]s?|hay|ha|va|dime|encuentra)\b",
    _FLAGS,
)


def asks_something(text: str) -> bool:
    """Whether `text` asks a question or for something to be found."""
    return "?" in text or "¿" in text or _QUESTION_WORDS.search(text) is not None


def web_query(text: str) -> str:
    """`text` without a leading "search the web for" and its like: what to search for."""
    return ONLINE.sub(" ", EXPLICIT_WEB.sub("", text, count=1)).strip(" .?!¿¡") or text.strip()


def explicit_web(text: str) -> bool:
    """Whether `text` asks in so many words for a web search (and says what for)."""
    match = EXPLICIT_WEB.search(text)
    if match is None:
        return ONLINE.search(text) is not None and asks_something(text)
    # "search the web" with nothing to search for asks for nothing.
    return bool(text[match.end() :].strip(" .?!¿¡"))
