"""What is shown of a model's answer from documents: only what the cited passages support.

The `document_answers` setting chooses:

- `strict` (the default): each sentence the model wrote is checked against the passages
  it cites (`storage.documents.support`); unsupported sentences are dropped, and when
  none is left the answer is the evidence itself, introduced as such;
- `mark`: every sentence is shown, the unsupported ones marked;
- `off`: the model's answer as written.

In every mode the evidence follows: the source sentences that answer the question
(`storage.documents.evidence`). While the model writes, `RunawayGuard` stops it at the
first repeated sentence or phrase, or past `MAX_ANSWER_CHARS`: a 135M model that starts
repeating itself never recovers, and the person would wait for text that is dropped.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from storage.documents.content_words import fold
from storage.documents.embedder import Embedder
from storage.documents.evidence import Quote, best_sentences, render_quotes
from storage.documents.support import SupportCheck, check_sentences

logger = logging.getLogger(__name__)

DocumentAnswers = Literal["strict", "mark", "off"]
DOCUMENT_ANSWER_MODES: tuple[DocumentAnswers, ...] = ("strict", "mark", "off")

EVIDENCE_ONLY = "The documents say:"
NO_EVIDENCE = "I found passages on this, but no sentence in them that answers it."
UNSUPPORTED_MARK = "[not in the documents] "
# A document answer longer than this is running away (the model's own words, about 100
# tokens; the evidence is added after, so a longer answer only costs time).
MAX_ANSWER_CHARS = 400
# A phrase of this many words, seen this many times, is repetition.
PHRASE_WORDS = 6
PHRASE_REPEATS = 2
# Longest question read, in characters: the rest of a pasted essay cannot be searched
# or fit in the prompt, and is not what is asked.
MAX_QUESTION_CHARS = 1000

_WORDS = re.compile(r"\w+", re.UNICODE)


class RunawayGuard:
    """Fed a model's text as it streams; `feed` says when to stop it, and `text` is what
    is kept (cut before the first repetition)."""

    def __init__(self, max_chars: int = MAX_ANSWER_CHARS) -> None:
        self._max_chars = max_chars
        self.text = ""
        self.stopped = False

    def feed(self, piece: str) -> bool:
        """Add `piece`; True when generation should stop."""
        if self.stopped:
            return True
        self.text += piece
        cut = repetition_start(self.text)
        if cut is not None:
            self.text = self.text[:cut].rstrip()
            self.stopped = True
        elif len(self.text) > self._max_chars:
            self.text = _last_sentence_end(self.text[: self._max_chars])
            self.stopped = True
        return self.stopped


def _last_sentence_end(text: str) -> str:
    ends = [match.end() for match in re.finditer(r"[.!?…](?=\s|$)", text)]
    return text[: ends[-1]] if ends else text


def repetition_start(text: str) -> int | None:
    """Where `text` starts repeating itself: the start of a sentence seen before, or of
    the `PHRASE_REPEATS`th occurrence of a phrase of `PHRASE_WORDS` words; None if not."""
    seen: set[str] = set()
    for match in re.finditer(r"[^.!?\n]+[.!?\n]", text):
        key = " ".join(_WORDS.findall(fold(match.group())))
        if len(key.split()) >= 3 and key in seen:
            return match.start()
        seen.add(key)
    words = list(_WORDS.finditer(fold(text)))
    phrases: dict[tuple[str, ...], int] = {}
    for index in range(len(words) - PHRASE_WORDS + 1):
        phrase = tuple(word.group() for word in words[index : index + PHRASE_WORDS])
        phrases[phrase] = phrases.get(phrase, 0) + 1
        if phrases[phrase] >= PHRASE_REPEATS:
            return words[index].start()
    return None


@dataclass(frozen=True)
class ShownAnswer:
    text: str  # what is shown of the model's answer; "" when none of it is
    quotes: list[Quote] = field(default_factory=list)  # the evidence under it

    def render(self) -> str:
        """The answer with its evidence (sources are the caller's to add)."""
        if self.text:
            return self.text + render_quotes(self.quotes)
        return evidence_only(self.quotes)


async def shown_answer(
    embedder: Embedder | None,
    question: str,
    answer: str,
    cited: Sequence[tuple[int, str]],
    mode: DocumentAnswers = "strict",
    check: SupportCheck = "words",
) -> ShownAnswer:
    """What the person reads of `answer` (the model's, from the passages `cited` as
    (citation number, text)), and the evidence that follows it.
    Without an embedder, quotes are picked and sentences checked by their words."""
    question = question[:MAX_QUESTION_CHARS]
    quotes: list[Quote] = []
    if embedder is None:
        check = "words"
    try:
        quotes = await best_sentences(embedder, question, cited)
    except Exception:  # the answer is still checked; it is shown without quotes
        logger.warning("could not pick sentences from the passages", exc_info=True)
    if mode == "off":
        return ShownAnswer(answer.strip(), quotes)
    checked = await check_sentences(
        embedder, answer, [text for _, text in cited], question, check=check
    )
    if mode == "mark":
        marked = [c.text if c.supported else UNSUPPORTED_MARK + c.text for c in checked]
        return ShownAnswer(" ".join(marked), quotes)
    return ShownAnswer(" ".join(c.text for c in checked if c.supported), quotes)


def evidence_only(quotes: Sequence[Quote]) -> str:
    """The answer when nothing the model wrote is supported: the evidence, as such."""
    if not quotes:
        return NO_EVIDENCE
    return render_quotes(quotes, EVIDENCE_ONLY).lstrip("\n")


async def guarded_text(pieces: AsyncIterator[str], guard: RunawayGuard | None = None) -> str:
    """The text of a model's stream, stopped (and the stream closed, which ends the
    generation) at the first runaway `guard` sees."""
    guard = guard or RunawayGuard()
    try:
        async for piece in pieces:
            if guard.feed(piece):
                break
    finally:
        await close_stream(pieces)
    return guard.text


async def close_stream(stream: AsyncIterator[Any]) -> None:
    """Close an async generator now (a plain iterator has nothing to close): for a
    model's stream, that ends the generation."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()
