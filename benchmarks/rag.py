"""Document retrieval: ingestion throughput, search latency and recall on pgvector.

- ingestion: real documents of generated English-like text through `PgDocumentStore.add`
  (chunking, the numpy MiniLM embedder, one transaction per document): chunks per second.
- retrieval at N chunks (random unit vectors, or with `--data text` MiniLM embeddings of
  real sentences, `benchmarks/text_vectors.py`): the semantic query
  the store runs (HNSW, cosine, scope filter, iterative scan) and the full hybrid query
  (semantic + full text fused), p50/p95 latency over many queries, and recall@10 of the
  semantic top 10 against exact search (numpy) within the scope, at ef_search 100 (the
  store's default) and 400. Two scopes: "large" holds 90% of the chunks, "small" 10%,
  so the scope filter is exercised; the small scope is also timed with the exact
  ranking the store uses for scopes of up to 20,000 chunks ("exact" rows). The chunk
  texts draw on a 36-word vocabulary, so nearly every chunk matches the full-text side:
  a worst case for the hybrid query.

Runs on its own embedded PostgreSQL in a temporary folder.

    python benchmarks/rag.py [--sizes 10000 100000] [--queries 200] [--ingest-chunks 300]
                             [--ef-search 100 400] [--data random|text]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from psycopg_pool import AsyncConnectionPool  # noqa: E402

from benchmarks.text_vectors import sentence_vectors  # noqa: E402
from storage.documents import MiniLMEmbedder, PgDocumentStore, SourceDocument  # noqa: E402
from storage.documents.hybrid_search import search_sql, vector_literal  # noqa: E402
from storage.embedded_postgres import EmbeddedPostgres  # noqa: E402
from storage.postgres import open_pool  # noqa: E402

WORDS = [
    "the",
    "club",
    "house",
    "opens",
    "members",
    "borrow",
    "bikes",
    "rules",
    "meeting",
    "schedule",
    "garden",
    "repair",
    "tools",
    "river",
    "bridge",
    "history",
    "town",
    "market",
    "festival",
    "music",
    "school",
    "library",
    "sport",
    "team",
    "coach",
    "season",
    "ticket",
    "price",
    "volunteer",
    "donation",
    "event",
    "summer",
    "winter",
    "night",
    "morning",
    "report",
]
DIMENSIONS = 384

SEMANTIC_SQL = """
SELECT id FROM (
    SELECT id, embedding <=> %(vector)s::vector AS distance FROM document_chunks
    WHERE scope = %(scope)s ORDER BY {order} LIMIT 10
) AS found ORDER BY distance
"""
# The store ranks scopes of up to EXACT_SEARCH_MAX_CHUNKS chunks exactly (no index).
ORDERS = {"hnsw": "distance", "exact": "(embedding <=> %(vector)s::vector) + 0"}


def sentence(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 16))).capitalize() + "."


def text_of(rng: random.Random, chars: int) -> str:
    paragraphs, length = [], 0
    while length < chars:
        paragraph = " ".join(sentence(rng) for _ in range(rng.randint(2, 5)))
        paragraphs.append(paragraph)
        length += len(paragraph) + 2
    return "\n\n".join(paragraphs)


async def ingestion(pool: AsyncConnectionPool, chunks: int) -> tuple[float, int, float]:
    """Chunks per second through `add`, the chunk count, and embedding-only chunks/s."""
    embedder = MiniLMEmbedder()
    store = PgDocumentStore(pool, embedder)
    await store.initialize()
    rng = random.Random(1)
    documents = [
        SourceDocument(f"doc {n}", f"doc{n}.txt", "text/plain", text_of(rng, 20 * 450))
        for n in range(max(1, chunks // 20))
    ]
    started = time.perf_counter()
    total = 0
    for document in documents:
        total += (await store.add("bench:ingest", document)).document.chunk_count
    elapsed = time.perf_counter() - started
    sample = [sentence(rng) * 4 for _ in range(64)]
    embed_started = time.perf_counter()
    embedder.embed_sync(sample)
    embed_rate = len(sample) / (time.perf_counter() - embed_started)
    return total / elapsed, total, embed_rate


def random_unit(rng: np.random.Generator, count: int) -> np.ndarray:
    vectors = rng.standard_normal((count, DIMENSIONS)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


async def load_vectors(
    pool: AsyncConnectionPool, vectors: np.ndarray, rng: np.random.Generator
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fill the index with `vectors`, 90% in one scope and 10% in another; return each
    scope's chunk ids and vectors."""
    size = len(vectors)
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM documents WHERE scope LIKE 'bench:%%'")
        row = await (
            await conn.execute(
                "INSERT INTO documents (scope, title, source, media_type, sha256, chunk_count, "
                "embedding_model) VALUES ('bench:large', 'random', 'random', 'text/plain', "
                "'x', 0, 'sentence-transformers/all-MiniLM-L6-v2') RETURNING id"
            )
        ).fetchone()
        assert row is not None
        document_id = row[0]
        scopes = np.where(rng.random(size) < 0.1, "bench:small", "bench:large")
        words = np.array(WORDS)
        async with (
            conn.cursor() as cursor,
            cursor.copy(
                "COPY document_chunks (document_id, scope, position, content, token_count, "
                "embedding) FROM STDIN"
            ) as copy,
        ):
            for position in range(size):
                content = " ".join(rng.choice(words, 12))
                await copy.write_row(
                    (
                        document_id,
                        str(scopes[position]),
                        position,
                        content,
                        12,
                        vector_literal(vectors[position]),
                    )
                )
        await conn.execute("VACUUM ANALYZE document_chunks")
        ids = [
            int(r[0])
            for r in await (
                await conn.execute(
                    "SELECT id FROM document_chunks WHERE document_id = %s ORDER BY position",
                    (document_id,),
                )
            ).fetchall()
        ]
    id_array = np.array(ids)
    return {
        scope: (id_array[scopes == scope], vectors[scopes == scope])
        for scope in ("bench:large", "bench:small")
    }


async def timed_queries(
    pool: AsyncConnectionPool,
    scope: str,
    ids: np.ndarray,
    vectors: np.ndarray,
    queries: np.ndarray,
    rng: np.random.Generator,
    ef_search: int,
    exact_order: bool = False,
) -> tuple[list[float], list[float], float]:
    semantic_sql = SEMANTIC_SQL.format(order=ORDERS["exact" if exact_order else "hnsw"])
    semantic_ms, hybrid_ms, recalls = [], [], []
    for query in queries:
        literal = vector_literal(query)
        exact = set(ids[np.argsort(-(vectors @ query))[:10]].tolist())
        async with pool.connection() as conn, conn.transaction():
            await conn.execute(
                "SELECT set_config('hnsw.ef_search', %s, true), "
                "set_config('hnsw.iterative_scan', 'relaxed_order', true)",
                (str(ef_search),),
            )
            started = time.perf_counter()
            rows = await (
                await conn.execute(semantic_sql, {"vector": literal, "scope": scope})
            ).fetchall()
            semantic_ms.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            await (
                await conn.execute(
                    search_sql(exact=exact_order),
                    {
                        "scope": scope,
                        "vector": literal,
                        "text": " ".join(rng.choice(WORDS, 4)),
                        "candidates": 40,
                        "floor": -1.0,
                        "k": 5,
                    },
                )
            ).fetchall()
            hybrid_ms.append((time.perf_counter() - started) * 1000)
        recalls.append(len(exact & {int(r[0]) for r in rows}) / 10)
    return semantic_ms, hybrid_ms, statistics.mean(recalls)


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main_async(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-rag-") as scratch:
        # The embedded server may run as its own user, which must reach its data folder.
        os.chmod(scratch, 0o755)
        async with EmbeddedPostgres(Path(scratch) / "postgres") as server:
            pool = await open_pool(server.url, max_size=2)
            try:
                rate, total, embed_rate = await ingestion(pool, args.ingest_chunks)
                print(
                    f"machine: {platform.machine()}, {os.cpu_count()} CPUs, "
                    f"Python {platform.python_version()}"
                )
                print(f"\ningestion: {total} chunks in {total // 20} documents through add()")
                print("| stage | chunks/s |\n| --- | --- |")
                print(f"| add() end to end (chunk, embed, store) | {rate:.1f} |")
                print(f"| embedding alone (numpy MiniLM, batch 64) | {embed_rate:.1f} |")
                print(
                    f"\nretrieval ({args.data} vectors): {args.queries} queries per row, k=10, "
                    "iterative scan relaxed_order"
                )
                print(
                    "| chunks | ef_search | scope (share) | semantic p50 / p95 (ms) "
                    "| hybrid p50 / p95 (ms) | recall@10 | load (s) |"
                )
                print("| --- | --- | --- | --- | --- | --- | --- |")
                rng = np.random.default_rng(7)
                # Sentences: the index holds the first N, the queries are held out.
                sentences = (
                    sentence_vectors(max(args.sizes) + args.queries)
                    if args.data == "text"
                    else None
                )
                for size in args.sizes:
                    started = time.perf_counter()
                    vectors = random_unit(rng, size) if sentences is None else sentences[:size]
                    scopes = await load_vectors(pool, vectors, rng)
                    load_s = time.perf_counter() - started
                    runs = [
                        (str(ef_search), scope, share)
                        for ef_search, (scope, share) in itertools.product(
                            args.ef_search, (("bench:large", "90%"), ("bench:small", "10%"))
                        )
                    ] + [("exact", "bench:small", "10%")]
                    for ef_search, scope, share in runs:
                        ids, vectors = scopes[scope]
                        exact = ef_search == "exact"
                        semantic, hybrid, recall = await timed_queries(
                            pool,
                            scope,
                            ids,
                            vectors,
                            (
                                random_unit(rng, args.queries)
                                if sentences is None
                                else sentences[-args.queries :]
                            ),
                            rng,
                            100 if exact else int(ef_search),
                            exact,
                        )
                        semantic_p = (
                            f"{statistics.median(semantic):.1f} / {percentile(semantic, 0.95):.1f}"
                        )
                        hybrid_p = (
                            f"{statistics.median(hybrid):.1f} / {percentile(hybrid, 0.95):.1f}"
                        )
                        print(
                            f"| {size} | {ef_search} | {scope.split(':')[1]} ({share}) "
                            f"| {semantic_p} | {hybrid_p} "
                            f"| {recall:.3f} | {load_s:.0f} |",
                            flush=True,
                        )
            finally:
                await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--ingest-chunks", type=int, default=300)
    parser.add_argument("--ef-search", type=int, nargs="+", default=[100, 400])
    parser.add_argument(
        "--data",
        choices=["random", "text"],
        default="random",
        help="random unit vectors, or embeddings of real sentences (benchmarks/text_vectors.py)",
    )
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
