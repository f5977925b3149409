"""`docs ask` and `docs summarize` on the real document store, with a scripted model.

The model is scripted so the tests can check what it is shown and what is made of its
reply; retrieval, the store and the embedder are the real ones.
"""

from __future__ import annotations

import uuid

import pytest
from psycopg_pool import AsyncConnectionPool

from bot.docs.qa import NOT_FOUND, SummaryParser, ask, summarize
from storage.documents import MiniLMEmbedder, PgDocumentStore, SourceDocument
from storage.documents.chunking import chunk_text
from tests.fakes import ScriptedChatModel

HOURS = "The club house opens at nine on Saturdays and at ten on Sundays."
BIKES = "Members may borrow the club's two cargo bikes for up to three days."


@pytest.fixture
async def store(pg_pool: AsyncConnectionPool, embedder: MiniLMEmbedder) -> PgDocumentStore:
    return PgDocumentStore(pg_pool, embedder)


@pytest.fixture
async def scope(store: PgDocumentStore) -> str:
    scope = f"test:{uuid.uuid4().hex}"
    await store.add(scope, SourceDocument("Opening hours", "hours.md", "text/markdown", HOURS))
    await store.add(scope, SourceDocument("Bike rules", "bikes.md", "text/markdown", BIKES))
    return scope


async def test_the_answer_comes_from_numbered_passages_and_cites_them(
    store: PgDocumentStore, scope: str
) -> None:
    model = ScriptedChatModel()
    model.enqueue("It opens at nine on Saturdays [1].")
    answer = await ask(store, model, scope, "When does the club house open on Saturday?")
    assert answer.found
    [call] = model.calls
    system, human = call["messages"]
    assert "[1] (Opening hours (part 1))" in system.text
    assert HOURS in system.text
    assert "only the numbered passages" in system.text
    assert human.text == "When does the club house open on Saturday?"
    rendered = answer.render()
    assert rendered.startswith("It opens at nine on Saturdays [1].")
    assert "Sources:\n[1] Opening hours (part 1) - hours.md" in rendered
    assert "Bike rules" not in rendered  # only what the answer cites


async def test_the_source_sentence_is_shown_under_even_a_garbled_answer(
    store: PgDocumentStore, scope: str
) -> None:
    model = ScriptedChatModel()
    model.enqueue("Club bikes three are sunday [2] [1]")  # what a tiny model may write
    answer = await ask(store, model, scope, "How long can members keep a cargo bike?")
    assert answer.quotes[0].sentence == BIKES
    rendered = answer.render()
    assert f"From the documents:\n> {BIKES} [" in rendered
    assert rendered.index("From the documents:") < rendered.index("Sources:")


async def test_nothing_relevant_means_no_model_call(store: PgDocumentStore, scope: str) -> None:
    model = ScriptedChatModel()
    answer = await ask(store, model, scope, "Who painted the Mona Lisa?")
    assert (answer.text, answer.found) == (NOT_FOUND, False)
    assert model.calls == []
    assert answer.render() == NOT_FOUND


async def test_the_model_saying_not_in_documents_gives_the_plain_answer(
    store: PgDocumentStore, scope: str
) -> None:
    model = ScriptedChatModel()
    model.enqueue("Sorry, NOT IN DOCUMENTS.")
    answer = await ask(store, model, scope, "How long may I borrow a cargo bike in winter?")
    assert len(model.calls) == 1
    assert answer.render() == NOT_FOUND


async def test_sampling_reaches_the_model(store: PgDocumentStore, scope: str) -> None:
    model = ScriptedChatModel()
    model.enqueue("Three days [1].")
    await ask(store, model, scope, "How long can I borrow a bike?", sampling={"temperature": 0.1})
    assert model.calls[0]["kwargs"]["temperature"] == 0.1


async def test_a_short_text_is_summarised_in_one_call() -> None:
    model = ScriptedChatModel()
    model.enqueue("TITLE: Club hours\nPOINTS:\n- Opens at nine\n- Sundays at ten\nABSTRACT: When.")
    summary = await summarize(model, HOURS, points=2, language="Portuguese")
    assert summary.title == "Club hours"
    assert summary.points == ["Opens at nine", "Sundays at ten"]
    assert summary.abstract == "When."
    [call] = model.calls
    assert "in Portuguese" in call["messages"][0].text
    assert "exactly 2 points" in call["messages"][0].text
    assert call["messages"][1].text == HOURS


async def test_a_long_text_is_summarised_map_reduce() -> None:
    model = ScriptedChatModel()
    text = "\n\n".join(f"Paragraph {n} says that item {n} costs {n} euros." for n in range(400))
    # The budget at context 1024 and max_tokens 256: (1024 - 256 - 200) * 3 characters.
    budget = 1704
    parts = len(chunk_text(text, budget, 0))
    model.enqueue(*["notes" for _ in range(parts)])
    model.enqueue("TITLE: Prices\nPOINTS:\n- Items cost euros\nABSTRACT: A price list.")
    summary = await summarize(
        model, text, points=1, context_tokens=1024, sampling={"max_tokens": 256}
    )
    assert summary.title == "Prices"
    map_calls = [call for call in model.calls if "key facts" in call["messages"][0].text]
    assert len(map_calls) == parts > 8
    assert all(len(call["messages"][1].text) <= budget for call in map_calls)
    assert len(model.calls) == parts + 1
    assert "Summarise the text" in model.calls[-1]["messages"][0].text
    assert "notes" in model.calls[-1]["messages"][1].text


def test_the_summary_parser_tolerates_drift() -> None:
    parsed = SummaryParser().parse(
        "**Title:** Cargo bikes\n\nKey points:\n1. Two bikes\n2) Three days\n* Ask first\n"
        "Abstract: Members borrow\nbikes briefly."
    )
    assert parsed.title == "Cargo bikes"
    assert parsed.points == ["Two bikes", "Three days", "Ask first"]
    assert parsed.abstract == "Members borrow bikes briefly."
