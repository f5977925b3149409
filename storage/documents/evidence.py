"""The sentences of retrieved passages that answer a question, picked by the embeddings
and the question's own words, each with the sentence after it.

Shown under an answer written from documents, so the person reads the source's own
words whatever the model made of them: extractive, never generated. Each passage is
split into sentences (a table row is one, read with its header); a sentence's score is
its embedding similarity to the question plus a share for the question's content words
and numbers it holds (`storage.documents.content_words`): "which file format" must
find the sentence that names the format, which the embeddings alone rank below one
that talks about files. The best sentence is shown with the next one of its paragraph
when both fit in `MAX_QUOTE_CHARS`: a sentence that sets up the subject ("...known as
Transformers.") is often followed by the one that answers ("First proposed in ...").

Sentences addressed to the model rather than the reader ("ignore your instructions")
are never quoted: they are not facts a document states.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from storage.documents.content_words import numbers, overlap, stems
from storage.documents.embedder import Embedder

# Shorter fragments (a heading, "Yes.") carry no answer of their own.
MIN_WORDS = 4
# A second quote is shown only when its sentence is nearly as good as the best one.
RUNNER_UP_MARGIN = 0.08
MAX_SENTENCE_CHARS = 400
# A quote with its neighbour stays within this length.
MAX_QUOTE_CHARS = 420
# How much the question's content words and numbers add to a sentence's similarity.
WORDS_WEIGHT = 0.3
NUMBERS_WEIGHT = 0.15

_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
_TABLE_RULE = re.compile(r"^\|?[\s:|-]+\|?$")
ADDRESSED_TO_MODEL = re.compile(
    r"\b(?:ignore|disregard|forget)\b.{0,40}\b(?:instructions?|prompt|rules|above)\b"
    r"|\b(?:ignora|olvida)\b.{0,40}\b(?:instrucciones|indicaciones|reglas|anterior)\b"
    r"|\b(?:system\s+prompt|you\s+are\s+now|as\s+an\s+ai|new\s+instructions?)\b"
    r"|\b(?:eres\s+ahora|a\s+partir\s+de\s+ahora\s+eres|nuevas\s+instrucciones)\b"
    r"|\b(?:assistant|asistente|chatbot|bot|model|modelo|ai|ia)\b.{0,30}"
    r"\b(?:must|should|has\s+to|debe|tiene\s+que)\s+(?:say|reply|answer|tell|decir|responder)\b",
    re.IGNORECASE | re.DOTALL,
)


@dataclass(frozen=True)
class Quote:
    number: int  # the passage's citation number, as in [1]
    sentence: str  # one sentence, or one and the next of its paragraph
    similarity: float


@dataclass(frozen=True)
class Sentence:
    text: str
    paragraph: int  # sentences of one paragraph (or table) share it


def sentence_units(text: str) -> list[Sentence]:
    """`text` cut into sentences: lines wrapped mid-sentence are joined, a blank line or
    a Markdown heading ends a paragraph, a table row is one sentence read with its
    header ("crop: potatoes; 2025 kg: 455"), headings and short fragments are left out,
    and so is anything addressed to the model."""
    found: list[Sentence] = []
    lines: list[str] = []
    header: list[str] = []
    paragraph = 0

    def add(sentence: str) -> None:
        if len(sentence.split()) >= MIN_WORDS and not ADDRESSED_TO_MODEL.search(sentence):
            found.append(Sentence(sentence[:MAX_SENTENCE_CHARS], paragraph))

    def end_paragraph() -> None:
        nonlocal paragraph
        for piece in _SENTENCE_END.split(" ".join(lines)):
            add(piece)
        if lines or header:
            paragraph += 1
        lines.clear()
        header.clear()

    for raw in text.splitlines():
        line = " ".join(raw.split())
        if line.startswith("|"):
            if lines:
                end_paragraph()
            cells = [cell.strip() for cell in line.strip("|").split("|")]
            if _TABLE_RULE.match(line):
                continue
            if not header:
                header.extend(cells)
                continue
            pairs = zip(header, cells, strict=False)
            named = [f"{name}: {cell}" if name else cell for name, cell in pairs]
            add("; ".join(named))
        elif not line or line.startswith("#"):
            end_paragraph()
        else:
            if header:
                end_paragraph()
            lines.append(line)
    end_paragraph()
    return found


def sentences(text: str) -> list[str]:
    """The sentences of `text` (see `sentence_units`)."""
    return [unit.text for unit in sentence_units(text)]


def word_score(question: str, sentence: str) -> float:
    """What the question's own content words and numbers add to a sentence's score."""
    words = overlap(stems(question), stems(sentence)) if stems(question) else 0.0
    wanted = numbers(question)
    figures = overlap(wanted, numbers(sentence)) if wanted else 0.0
    return WORDS_WEIGHT * words + NUMBERS_WEIGHT * figures


def _units_or_whole(text: str) -> list[Sentence]:
    """A passage's sentences; a passage too short to hold one ("be kind always") is
    its own, unless it is only headings or addressed to the model."""
    units = sentence_units(text)
    if units:
        return units
    body = " ".join(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )
    if not body or ADDRESSED_TO_MODEL.search(body):
        return []
    return [Sentence(body[:MAX_SENTENCE_CHARS], 0)]


async def best_sentences(
    embedder: Embedder | None,
    question: str,
    passages: Sequence[tuple[int, str]],
    limit: int = 2,
) -> list[Quote]:
    """Up to `limit` quotes from `passages` ((citation number, text) pairs) for
    `question`, best first: a sentence and the next of its paragraph where they fit;
    quotes after the first only if nearly as good. Without an embedder, by the
    question's words alone."""
    candidates = [(number, unit) for number, text in passages for unit in _units_or_whole(text)]
    if not question.strip() or not candidates:
        return []
    similarities = [0.0] * len(candidates)
    if embedder is not None:
        vectors = await embedder.embed([question, *(unit.text for _, unit in candidates)])
        similarities = [float(value) for value in vectors[1:] @ vectors[0]]
    scores = [
        similarity + word_score(question, unit.text)
        for similarity, (_, unit) in zip(similarities, candidates, strict=True)
    ]
    ranked = sorted(range(len(candidates)), key=lambda i: -scores[i])
    best = scores[ranked[0]]
    quotes: list[Quote] = []
    shown: set[int] = set()
    for position in ranked:
        if len(quotes) >= limit or scores[position] < best - RUNNER_UP_MARGIN:
            break
        if position in shown:
            continue
        number, unit = candidates[position]
        text = unit.text
        shown.add(position)
        following = position + 1
        if following < len(candidates) and following not in shown:
            next_number, next_unit = candidates[following]
            joined = f"{text} {next_unit.text}"
            same = next_number == number and next_unit.paragraph == unit.paragraph
            if same and len(joined) <= MAX_QUOTE_CHARS:
                text = joined
                shown.add(following)
        quotes.append(Quote(number, text, scores[position]))
    return quotes


def render_quotes(quotes: Sequence[Quote], heading: str = "From the documents:") -> str:
    """The quotes as they follow an answer (with the blank line before them); "" if none."""
    lines = "".join(f"\n> {quote.sentence} [{quote.number}]" for quote in quotes)
    return f"\n\n{heading}{lines}" if lines else ""
