"""Whether each sentence of a generated answer is supported by the passages it cites.

A small model asked to answer from passages writes fluent sentences the passages never
say. Before such an answer is shown, each of its sentences is checked against the
sentences of the passages, with two measures (`benchmarks/answer_eval.py` compares them):

- content words and numbers (`storage.documents.content_words`): every number the
  sentence states must be written in the passages, and at least `MIN_WORD_SHARE` of its
  content words must occur in one window of `WINDOW` consecutive passage sentences (or
  in the question, whose subject an answer restates);
- embedding similarity: the sentence's cosine similarity to its closest passage
  sentence must reach `MIN_SIMILARITY`.

`check="words"` (the default) uses the first alone, `"embedding"` the second (numbers
still checked), `"both"` needs both. On the labelled sentences of
`benchmarks/data/answers/labelled_sentences.jsonl` the words measure separates invented
sentences from supported ones and MiniLM's similarity does not: an invented sentence on
the passage's subject scores as high as a true one (`benchmarks/answer_eval.py --labels`).

A sentence with no content word of its own ("Sure!") states nothing and counts
as unsupported, as does one that restates only the question's words, which is how an
answer that knows nothing sounds ("The rules say about spam that spam is...").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from storage.documents.content_words import numbers, overlap, stems
from storage.documents.embedder import Embedder
from storage.documents.evidence import sentence_units

MIN_WORD_SHARE = 0.9
MIN_SIMILARITY = 0.55
WINDOW = 3
# Generated text is cut into sentences at these marks, and at line breaks.
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+|\n+")
_CITATION = re.compile(r"\s*\[\d+\]")

SupportCheck = Literal["both", "words", "embedding"]


@dataclass(frozen=True)
class CheckedSentence:
    text: str  # as the model wrote it
    supported: bool
    word_share: float  # of its content words, in the best window of passage sentences
    similarity: float  # to the closest passage sentence
    numbers_found: bool  # every number it states is in the passages


def answer_sentences(text: str) -> list[str]:
    """A generated answer cut into sentences (blank pieces left out)."""
    return [piece.strip() for piece in _SENTENCE_END.split(text) if piece.strip()]


def _windows(passages: Sequence[str]) -> list[set[str]]:
    """The content-word stems of each window of `WINDOW` consecutive passage sentences."""
    windows: list[set[str]] = []
    for passage in passages:
        units = [stems(unit.text) for unit in sentence_units(passage)] or [stems(passage)]
        for start in range(max(1, len(units) - WINDOW + 1)):
            windows.append(set().union(*units[start : start + WINDOW]))
    return windows


async def check_sentences(
    embedder: Embedder | None,
    answer: str,
    passages: Sequence[str],
    question: str = "",
    check: SupportCheck = "words",
) -> list[CheckedSentence]:
    """Each sentence of `answer`, judged against `passages` (their texts)."""
    pieces = answer_sentences(answer)
    if not pieces:
        return []
    plain = [_CITATION.sub("", piece) for piece in pieces]
    source_sentences = [unit.text for passage in passages for unit in sentence_units(passage)]
    windows = _windows(passages)
    written = set().union(*(numbers(passage) for passage in passages)) if passages else set()
    asked = stems(question)
    similarities = [0.0] * len(plain)
    if source_sentences and check != "words" and embedder is not None:
        vectors = await embedder.embed([*plain, *source_sentences])
        closeness = vectors[: len(plain)] @ vectors[len(plain) :].T
        similarities = [float(row.max()) for row in closeness]
    checked: list[CheckedSentence] = []
    for piece, text, similarity in zip(pieces, plain, similarities, strict=True):
        own = stems(text)
        # The question's words are the subject an answer restates, not a claim of its own.
        share = max((overlap(own, window | asked) for window in windows), default=0.0)
        figures = numbers(text) <= written
        # Words or numbers beyond the question's: a sentence must state something.
        states = bool(own - asked) or bool(numbers(text) - numbers(question))
        by_words = figures and share >= MIN_WORD_SHARE
        by_embedding = figures and similarity >= MIN_SIMILARITY
        verdict = {
            "both": by_words and by_embedding,
            "words": by_words,
            "embedding": by_embedding,
        }[check]
        checked.append(CheckedSentence(piece, states and verdict, share, similarity, figures))
    return checked
