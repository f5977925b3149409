"""Which PostgreSQL text-search configuration a document's words are indexed with.

Full-text search stems words and drops stop words by language: Spanish text indexed as
English keeps "las" and "normas" whole and never matches "norma". A document's language
is guessed at ingestion from its commonest short words, which is reliable for any text
longer than a sentence; text in neither language is indexed with `simple` (lower-cased
words, no stemming), which still matches exact words in any language.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

# The most frequent words of each language that are rare in the other.
_STOP_WORDS: Final[dict[str, frozenset[str]]] = {
    "english": frozenset(
        (
            "the", "and", "of", "to", "is", "in", "that", "it", "for", "with", "are", "be",
            "on", "you", "this", "not", "at", "by", "or", "have", "from", "was", "an",
            "they", "we", "can", "will", "your", "which", "their", "has", "there",
        )
    ),
    "spanish": frozenset(
        (
            "el", "la", "los", "las", "de", "del", "que", "y", "en", "un", "una", "es",
            "por", "para", "con", "no", "se", "su", "al", "lo", "como", "más", "pero",
            "sus", "le", "ya", "o", "este", "esta", "son", "entre", "cuando", "muy", "sin",
            "sobre", "también",
        )
    ),
}  # fmt: skip
SIMPLE: Final = "simple"
# Below this share of known stop words, a text is in neither language.
MIN_SHARE = 0.08
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def text_search_config(text: str, languages: Sequence[str] = ("english", "spanish")) -> str:
    """The configuration among `languages` whose stop words `text` uses most; `simple`
    when it uses too few of any (another language, a list of names, code)."""
    words = [word.lower() for word in _WORD.findall(text[:20_000])]
    if not words:
        return SIMPLE
    counts = {
        language: sum(word in _STOP_WORDS.get(language, frozenset()) for word in words)
        for language in languages
    }
    best = max(counts, key=counts.__getitem__, default=SIMPLE)
    return best if counts.get(best, 0) >= MIN_SHARE * len(words) else SIMPLE
