"""Retrieval quality on a small fixed corpus with known answers (hit rate at 3).

The corpus is a community wiki in miniature: each question's answer is in exactly one
document, phrased differently from the question, and several documents share
vocabulary (rules, times, members) so a bag of words alone would be misled.
"""

from __future__ import annotations

import json
import uuid

import pytest
from psycopg_pool import AsyncConnectionPool

from storage.documents import MiniLMEmbedder, PgDocumentStore, SourceDocument
from storage.documents.hybrid_search import search_sql, vector_literal

CORPUS = {
    "Server rules": "Be kind to other members. No spam, no advertising of other servers, "
    "and keep discussions in the right channel. Moderators may mute anyone who breaks "
    "these rules for up to 24 hours.",
    "Game night": "Game night is every Friday at 20:00 UTC in the voice channel. We usually "
    "play board games online; new players are welcome and the host explains the rules.",
    "Donations": "The community is funded by voluntary donations through our Open "
    "Collective page. Donors get a coloured name, but no other privileges.",
    "Bot commands": "Type /help to see the bot's commands. /reset makes the bot forget the "
    "conversation and /cancel stops an answer that is being written.",
    "Server hardware": "Our bot runs on a small home server with 32 GB of RAM and an "
    "NVIDIA RTX 3060 graphics card, hosted by one of the admins in Lisbon.",
    "Becoming a moderator": "Moderators are chosen twice a year. Members with at least "
    "six months of activity can apply through the form pinned in #announcements.",
    "Backups": "Every night at 03:00 the database is copied to an external disk; copies "
    "are kept for thirty days and then deleted.",
    "Reporting bugs": "If the bot crashes or answers nonsense, open a ticket in #bug-reports "
    "with the time, the channel and what you asked.",
    "Language": "Most conversations are in English, but there are channels for Portuguese "
    "and Spanish speakers as well.",
    "Events calendar": "The summer meetup takes place in Porto in July; the winter meetup "
    "is online in December.",
}

QUESTIONS = {
    "When do we play games together?": "Game night",
    "How is the community paid for?": "Donations",
    "What GPU does the machine use?": "Server hardware",
    "How can I become a mod?": "Becoming a moderator",
    "How long are database copies kept?": "Backups",
    "Where do I report that the bot is broken?": "Reporting bugs",
    "Can I speak Spanish here?": "Language",
    "Is advertising allowed?": "Server rules",
    "How do I stop the bot while it is answering?": "Bot commands",
    "Where is the meetup held in summer?": "Events calendar",
}


@pytest.mark.parametrize("exact_up_to", [0, 20_000], ids=["hnsw", "exact"])
async def test_hit_rate_at_3_on_a_known_corpus(
    pg_pool: AsyncConnectionPool, embedder: MiniLMEmbedder, exact_up_to: int
) -> None:
    store = PgDocumentStore(pg_pool, embedder, exact_search_max_chunks=exact_up_to)
    scope = f"test:{uuid.uuid4().hex}"
    for title, text in CORPUS.items():
        await store.add(scope, SourceDocument(title, f"{title}.md", "text/markdown", text))
    misses = []
    for question, expected in QUESTIONS.items():
        titles = [passage.title for passage in await store.search(scope, question, k=3)]
        if expected not in titles:
            misses.append((question, expected, titles))
    hit_rate = 1 - len(misses) / len(QUESTIONS)
    assert hit_rate >= 0.9, misses


async def test_an_exact_term_is_found_by_full_text_search(
    pg_pool: AsyncConnectionPool, embedder: MiniLMEmbedder
) -> None:
    """An error code means little to the embedding; the full-text side finds it."""
    store = PgDocumentStore(pg_pool, embedder)
    scope = f"test:{uuid.uuid4().hex}"
    for title, text in CORPUS.items():
        await store.add(scope, SourceDocument(title, f"{title}.md", "text/markdown", text))
    await store.add(
        scope,
        SourceDocument(
            "Troubleshooting",
            "t.md",
            "text/markdown",
            "If the bot shows error E4471 the database connection was lost; restart the "
            "bot with the service manager.",
        ),
    )
    [best, *_] = await store.search(scope, "E4471", k=3)
    assert best.title == "Troubleshooting"


async def _plan(pool: AsyncConnectionPool, sql: str) -> str:
    params = {
        "scope": "test:plan",
        "vector": vector_literal([0.05] * 384),
        "text": "rules",
        "candidates": 40,
        "floor": 0.0,
        "k": 5,
    }
    async with pool.connection() as conn, conn.transaction():
        # An index for the order wherever one can serve it: on a tiny table the planner
        # would otherwise sort in every case, and the difference would not show.
        await conn.execute("SET LOCAL enable_sort = off")
        row = await (await conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)).fetchone()
    assert row is not None
    return json.dumps(row[0])


async def test_small_scopes_are_ranked_exactly_not_by_the_hnsw_index(
    pg_pool: AsyncConnectionPool,
) -> None:
    assert "document_chunks_embedding" in await _plan(pg_pool, search_sql())
    assert "document_chunks_embedding" not in await _plan(pg_pool, search_sql(exact=True))
