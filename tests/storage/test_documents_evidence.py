"""Picking the sentences of passages that answer a question, with the real MiniLM."""

from __future__ import annotations

from storage.documents import MiniLMEmbedder
from storage.documents.evidence import best_sentences, sentences

RULES = (
    "## Workshop\n"
    "The workshop opens at nine. Safety glasses are required at every machine. "
    "Nobody uses the table saw alone.\n"
    "Yes."
)
FEES = "The yearly membership fee is 40 euros, or 20 euros for students. It is due in January."


def test_sentences_leave_out_headings_and_fragments() -> None:
    assert sentences(RULES) == [
        "The workshop opens at nine.",
        "Safety glasses are required at every machine.",
        "Nobody uses the table saw alone.",
    ]
    # A line wrapped mid-sentence (PDF text) is one sentence again.
    assert sentences("Members may borrow\nthe tools for a week.\n\n# Fees\nNone at all, ever.") == [
        "Members may borrow the tools for a week.",
        "None at all, ever.",
    ]


async def test_the_sentence_that_answers_is_picked_with_its_passage_number(
    embedder: MiniLMEmbedder,
) -> None:
    quotes = await best_sentences(
        embedder, "Do I need to wear glasses at the machines?", [(1, FEES), (2, RULES)]
    )
    assert (quotes[0].number, quotes[0].sentence) == (
        2,
        "Safety glasses are required at every machine.",
    )
    students = await best_sentences(
        embedder, "How much do students pay?", [(1, FEES), (2, RULES)], limit=1
    )
    assert [(q.number, q.sentence) for q in students] == [
        (1, "The yearly membership fee is 40 euros, or 20 euros for students.")
    ]


async def test_nothing_to_quote_gives_no_quotes(embedder: MiniLMEmbedder) -> None:
    assert await best_sentences(embedder, "anything?", [(1, "## Heading only")]) == []
    assert await best_sentences(embedder, "  ", [(1, FEES)]) == []
