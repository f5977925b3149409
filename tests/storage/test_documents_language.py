"""Full-text search in each document's language (English, Spanish, or `simple`)."""

from __future__ import annotations

import uuid

import pytest
from psycopg_pool import AsyncConnectionPool

from storage.documents import MiniLMEmbedder, PgDocumentStore, SourceDocument
from storage.documents.language import text_search_config

GUIDE = (
    "Las noches de observación son el primer sábado de cada mes. Si el cielo está "
    "nublado, la observación se pasa al sábado siguiente y se avisa en el canal."
)
HANDBOOK = "Members may borrow the shared tools for up to seven days from the workshop."


@pytest.mark.parametrize(
    ("text", "config"),
    [
        (HANDBOOK, "english"),
        (GUIDE, "spanish"),
        ("今天北京的天气怎么样", "simple"),
        ("Alice, Bob, 42, 17", "simple"),
        ("", "simple"),
    ],
)
def test_the_language_is_guessed_from_common_words(text: str, config: str) -> None:
    assert text_search_config(text) == config


async def _indexed(pool: AsyncConnectionPool, scope: str, query: str) -> list[tuple[str, bool]]:
    async with pool.connection() as conn:
        rows = await (
            await conn.execute(
                "SELECT text_search_config::text, search_text @@ plainto_tsquery('spanish', %s) "
                "FROM document_chunks WHERE scope = %s ORDER BY document_id",
                (query, scope),
            )
        ).fetchall()
    return [(str(config), bool(match)) for config, match in rows]


async def test_each_document_is_stemmed_in_its_own_language(
    pg_pool: AsyncConnectionPool, embedder: MiniLMEmbedder
) -> None:
    store, scope = PgDocumentStore(pg_pool, embedder), f"test:{uuid.uuid4().hex}"
    await store.add(scope, SourceDocument("Guía", "guia.md", "text/markdown", GUIDE))
    await store.add(scope, SourceDocument("Handbook", "hb.md", "text/markdown", HANDBOOK))
    # "observaciones" finds "observación" only where Spanish stemming was applied.
    assert await _indexed(pg_pool, scope, "observaciones") == [
        ("spanish", True),
        ("english", False),
    ]


async def test_an_english_only_store_indexes_everything_as_english(
    pg_pool: AsyncConnectionPool, embedder: MiniLMEmbedder
) -> None:
    store = PgDocumentStore(pg_pool, embedder, languages=("english",))
    scope = f"test:{uuid.uuid4().hex}"
    await store.add(scope, SourceDocument("Guía", "guia.md", "text/markdown", GUIDE))
    assert await _indexed(pg_pool, scope, "observaciones") == [("english", False)]
    assert [p.title for p in await store.search(scope, "noches de observación")] == ["Guía"]


def test_configuration_names_are_checked_before_they_reach_sql(
    pg_pool: AsyncConnectionPool, embedder: MiniLMEmbedder
) -> None:
    with pytest.raises(ValueError, match="not a text search configuration"):
        PgDocumentStore(pg_pool, embedder, languages=("english'); DROP TABLE x; --",))
