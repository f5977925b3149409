"""The document store against real PostgreSQL + pgvector and the real MiniLM embedder.

`contract` tests state what any `DocumentStore` must do; they run against every backend
in STORE_FACTORIES (one today). Each test works in scopes of its own, so tests share
the session's database without seeing each other's documents.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
import pytest
from psycopg_pool import AsyncConnectionPool

from storage.documents import (
    DocumentNotFound,
    DocumentStore,
    Embedder,
    EmbeddingModelMismatch,
    MiniLMEmbedder,
    PgDocumentStore,
    SourceDocument,
)
from storage.documents.embedder import Vectors

StoreFactory = Callable[[AsyncConnectionPool, Embedder], Awaitable[DocumentStore]]


async def _pgvector_store(pool: AsyncConnectionPool, embedder: Embedder) -> DocumentStore:
    store = PgDocumentStore(pool, embedder)
    await store.initialize()
    return store


STORE_FACTORIES: dict[str, StoreFactory] = {"pgvector": _pgvector_store}


@pytest.fixture(params=sorted(STORE_FACTORIES))
async def store(
    request: pytest.FixtureRequest, pg_pool: AsyncConnectionPool, embedder: MiniLMEmbedder
) -> DocumentStore:
    return await STORE_FACTORIES[request.param](pg_pool, embedder)


def new_scope() -> str:
    return f"test:{uuid.uuid4().hex}"


def doc(title: str, text: str, source: str = "") -> SourceDocument:
    return SourceDocument(title, source or f"{title}.txt", "text/plain", text)


PARIS = "Paris is the capital and largest city of France, on the river Seine."
KETTLE = "To descale a kettle, boil a mixture of water and white vinegar, then rinse it well."
LONG = "\n\n".join(
    f"Section {n}. The maintenance schedule for pump {n} requires inspection every {n} weeks."
    for n in range(1, 30)
)

# --- contract -----------------------------------------------------------------------


async def test_added_document_is_listed_with_its_metadata(store: DocumentStore) -> None:
    scope = new_scope()
    result = await store.add(scope, doc("Geography", PARIS), added_by="terminal:alice")
    assert not result.duplicate
    [listed] = await store.list_documents(scope)
    assert listed == result.document
    assert (listed.title, listed.scope, listed.added_by) == ("Geography", scope, "terminal:alice")
    assert listed.chunk_count == 1
    assert listed.embedding_model == "sentence-transformers/all-MiniLM-L6-v2"
    assert len(listed.sha256) == 64


async def test_long_document_is_chunked_and_progress_reported(store: DocumentStore) -> None:
    seen: list[tuple[int, int]] = []
    result = await store.add(
        new_scope(), doc("Pumps", LONG), progress=lambda done, total: seen.append((done, total))
    )
    assert result.document.chunk_count > 3
    assert seen[-1] == (result.document.chunk_count, result.document.chunk_count)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)


async def test_search_finds_the_passage_that_answers(store: DocumentStore) -> None:
    scope = new_scope()
    geo = await store.add(scope, doc("Geography", PARIS))
    await store.add(scope, doc("Kitchen", KETTLE))
    [best, *_] = await store.search(scope, "What is the capital of France?", k=2)
    assert best.document_id == geo.document.id
    assert best.title == "Geography"
    assert best.position == 0
    assert best.text == PARIS
    assert best.source == "Geography.txt"
    assert 0.3 < best.score <= 1.0


async def test_search_results_cite_title_and_position(store: DocumentStore) -> None:
    scope = new_scope()
    added = await store.add(scope, doc("Pumps", LONG))
    passages = await store.search(scope, "How often is pump 17 inspected?", k=3)
    assert passages, "the pump schedule should answer this"
    top = passages[0]
    assert "pump 17" in top.text
    assert top.document_id == added.document.id
    assert 0 <= top.position < added.document.chunk_count
    assert top.citation() == f"Pumps (part {top.position + 1})"


async def test_unrelated_question_is_below_the_relevance_floor(store: DocumentStore) -> None:
    scope = new_scope()
    await store.add(scope, doc("Kitchen", KETTLE))
    assert await store.search(scope, "Who won the 1998 football world cup final?") == []


async def test_same_content_twice_is_recognised(store: DocumentStore) -> None:
    scope = new_scope()
    first = await store.add(scope, doc("Geography", PARIS, "a.txt"))
    second = await store.add(scope, doc("Geography copy", PARIS, "b.txt"))
    assert second.duplicate
    assert second.document.id == first.document.id
    assert len(await store.list_documents(scope)) == 1
    # The same content in another community is that community's own document.
    other = await store.add(new_scope(), doc("Geography", PARIS))
    assert not other.duplicate
    assert other.document.id != first.document.id


async def test_remove_deletes_the_document_and_its_chunks(
    store: DocumentStore, pg_pool: AsyncConnectionPool
) -> None:
    scope = new_scope()
    added = await store.add(scope, doc("Pumps", LONG))
    kept = await store.add(scope, doc("Geography", PARIS))
    removed = await store.remove(scope, added.document.id)
    assert removed.id == added.document.id
    assert [info.id for info in await store.list_documents(scope)] == [kept.document.id]
    assert await store.search(scope, "pump inspection schedule", k=5) == []
    async with pg_pool.connection() as conn:
        row = await (
            await conn.execute(
                "SELECT count(*) FROM document_chunks WHERE document_id = %s",
                (added.document.id,),
            )
        ).fetchone()
    assert row == (0,)
    with pytest.raises(DocumentNotFound, match="no document"):
        await store.remove(scope, added.document.id)


async def test_document_text_is_rebuilt_without_overlap(store: DocumentStore) -> None:
    scope = new_scope()
    added = await store.add(scope, doc("Pumps", LONG))
    assert added.document.chunk_count > 1
    assert (await store.document_text(scope, added.document.id)).split() == LONG.split()


async def test_blank_query_finds_nothing(store: DocumentStore) -> None:
    scope = new_scope()
    await store.add(scope, doc("Geography", PARIS))
    assert await store.search(scope, "   ") == []


# --- isolation ------------------------------------------------------------------------


async def test_a_scope_never_sees_another_scopes_documents(store: DocumentStore) -> None:
    ours, theirs = new_scope(), new_scope()
    secret = await store.add(
        theirs, doc("Secret", "The vault code of the other community is 4242.")
    )
    await store.add(ours, doc("Kitchen", KETTLE))
    crafted = [
        "vault code 4242",
        "What is the vault code of the other community?",
        f"' OR scope <> '{ours}' --",
        f"{theirs} vault | code & 4242:* !kettle",
        "'; DROP TABLE documents; --",
    ]
    for query in crafted:
        for passage in await store.search(ours, query, k=10):
            assert passage.document_id != secret.document.id, query
            assert "4242" not in passage.text
    assert [info.title for info in await store.list_documents(ours)] == ["Kitchen"]
    with pytest.raises(DocumentNotFound):
        await store.get(ours, secret.document.id)
    with pytest.raises(DocumentNotFound):
        await store.document_text(ours, secret.document.id)
    with pytest.raises(DocumentNotFound):
        await store.remove(ours, secret.document.id)
    # Still there for its owners.
    assert (await store.search(theirs, "vault code", k=1))[0].document_id == secret.document.id


async def test_small_scope_in_a_large_index_still_gets_results(
    pg_pool: AsyncConnectionPool, embedder: MiniLMEmbedder
) -> None:
    """The HNSW index is shared; the iterative scan must not starve a small scope."""
    store = PgDocumentStore(pg_pool, embedder)
    crowd = new_scope()
    # Many near-identical chunks in another scope crowd the nearest neighbours.
    crowd_text = "\n\n".join(
        f"Note {n}: the capital city question about France and Paris, item {n}." for n in range(120)
    )
    await store.add(crowd, doc("Crowd", crowd_text))
    small = new_scope()
    mine = await store.add(small, doc("Geography", PARIS))
    passages = await store.search(small, "capital city of France, Paris", k=3)
    assert [passage.document_id for passage in passages] == [mine.document.id]


# --- embedding model -----------------------------------------------------------------


class OtherModel(Embedder):
    """A second model name for the mismatch check: the vectors never reach the index."""

    model_name = "example/other-model"
    dimensions = 384

    def embed_sync(self, texts: Sequence[str]) -> Vectors:
        return np.eye(len(texts), self.dimensions, dtype=np.float32)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) for text in texts]


async def test_another_embedding_model_is_refused(
    store: DocumentStore, pg_pool: AsyncConnectionPool
) -> None:
    await store.add(new_scope(), doc("Geography", PARIS))  # the index now holds MiniLM vectors
    other = PgDocumentStore(pg_pool, OtherModel())
    with pytest.raises(EmbeddingModelMismatch, match="all-MiniLM-L6-v2"):
        await other.initialize()
    with pytest.raises(EmbeddingModelMismatch):
        await other.add(new_scope(), doc("Other", KETTLE))
    with pytest.raises(EmbeddingModelMismatch):
        await other.search(new_scope(), "kettle")


async def test_another_dimension_is_refused(pg_pool: AsyncConnectionPool) -> None:
    class Wide(OtherModel):
        model_name = "sentence-transformers/all-MiniLM-L6-v2"
        dimensions = 768

    with pytest.raises(EmbeddingModelMismatch, match="384-dimensional"):
        await PgDocumentStore(pg_pool, Wide()).initialize()


# --- concurrency --------------------------------------------------------------------


async def test_the_same_content_added_concurrently_is_stored_once(store: DocumentStore) -> None:
    scope = new_scope()
    results = await asyncio.gather(*(store.add(scope, doc(f"Copy {n}", KETTLE)) for n in range(3)))
    assert len({result.document.id for result in results}) == 1
    assert sum(not result.duplicate for result in results) == 1
    assert len(await store.list_documents(scope)) == 1
