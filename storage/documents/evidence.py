"""The sentences of retrieved passages that answer a question, picked by the embeddings.

Shown under an answer written from documents, so the person reads the source's own
words whatever the model made of them: extractive, never generated. Each passage is
split into sentences; the question and the sentences are embedded with the store's
model; the closest sentences win, each with the citation number of its passage.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from storage.documents.embedder import Embedder

# Shorter fragments (a heading, "Yes.") carry no answer of their own.
MIN_WORDS = 4
# A second sentence is shown only when it is nearly as close as the best one.
RUNNER_UP_MARGIN = 0.08
MAX_SENTENCE_CHARS = 400

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


@dataclass(frozen=True)
class Quote:
    number: int  # the passage's citation number, as in [1]
    sentence: str
    similarity: float


def sentences(text: str) -> list[str]:
    """`text` cut into sentences: lines wrapped mid-sentence are joined, a blank line or
    a Markdown heading ends a paragraph, headings and short fragments are left out."""
    found: list[str] = []
    paragraph: list[str] = []

    def end_paragraph() -> None:
        for piece in _SENTENCE_END.split(" ".join(paragraph)):
            if len(piece.split()) >= MIN_WORDS:
                found.append(piece[:MAX_SENTENCE_CHARS])
        paragraph.clear()

    for raw in text.splitlines():
        line = " ".join(raw.split())
        if not line or line.startswith("#"):
            end_paragraph()
        else:
            paragraph.append(line)
    end_paragraph()
    return found


async def best_sentences(
    embedder: Embedder,
    question: str,
    passages: Sequence[tuple[int, str]],
    limit: int = 2,
) -> list[Quote]:
    """Up to `limit` sentences of `passages` ((citation number, text) pairs) closest to
    `question`, best first; the ones after the first only if nearly as close."""
    candidates = [(number, sentence) for number, text in passages for sentence in sentences(text)]
    if not question.strip() or not candidates:
        return []
    vectors = await embedder.embed([question, *(sentence for _, sentence in candidates)])
    similarity = vectors[1:] @ vectors[0]
    ranked = sorted(range(len(candidates)), key=lambda i: -float(similarity[i]))
    best = float(similarity[ranked[0]])
    quotes: list[Quote] = []
    for index in ranked[:limit]:
        score = float(similarity[index])
        if quotes and score < best - RUNNER_UP_MARGIN:
            break
        number, sentence = candidates[index]
        if all(sentence != quote.sentence for quote in quotes):
            quotes.append(Quote(number, sentence, score))
    return quotes


def render_quotes(quotes: Sequence[Quote]) -> str:
    """The quotes as they follow an answer (with the blank line before them); "" if none."""
    lines = "".join(f"\n> {quote.sentence} [{quote.number}]" for quote in quotes)
    return f"\n\nFrom the documents:{lines}" if lines else ""
