"""PostgreSQL + pgvector: a connection pool and the schema as an ordered list of migrations."""

from __future__ import annotations

import logging

import psycopg
from psycopg_pool import AsyncConnectionPool

from storage.errors import ServiceUnavailable
from storage.redis_conn import redact_url

log = logging.getLogger(__name__)

# Append only: each entry runs once, in order, inside its own transaction; the version
# table records how many have run. Later features add their tables here.
MIGRATIONS: tuple[str, ...] = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    # Documents (storage.documents): one row per added source, unique per scope by the
    # hash of its extracted text.
    """
    CREATE TABLE documents (
        id bigserial PRIMARY KEY,
        scope text NOT NULL,
        title text NOT NULL,
        source text NOT NULL,
        media_type text NOT NULL,
        sha256 text NOT NULL,
        added_by text NOT NULL DEFAULT '',
        added_at timestamptz NOT NULL DEFAULT now(),
        chunk_count integer NOT NULL,
        embedding_model text NOT NULL,
        UNIQUE (scope, sha256)
    )
    """,
    # Chunks carry their scope too, so a search filters on one table before any join.
    """
    CREATE TABLE document_chunks (
        id bigserial PRIMARY KEY,
        document_id bigint NOT NULL REFERENCES documents (id) ON DELETE CASCADE,
        scope text NOT NULL,
        position integer NOT NULL,
        content text NOT NULL,
        token_count integer NOT NULL,
        embedding vector(384) NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}',
        search_text tsvector GENERATED ALWAYS AS (to_tsvector('english', content)) STORED,
        UNIQUE (document_id, position)
    )
    """,
    "CREATE INDEX document_chunks_scope ON document_chunks (scope)",
    "CREATE INDEX document_chunks_embedding ON document_chunks "
    "USING hnsw (embedding vector_cosine_ops)",
    "CREATE INDEX document_chunks_search_text ON document_chunks USING gin (search_text)",
    # Which embedding model made the vectors in document_chunks; one model per index.
    """
    CREATE TABLE embedding_index (
        name text PRIMARY KEY,
        model text NOT NULL,
        dimensions integer NOT NULL
    )
    """,
    # Full-text search in each chunk's own language (storage.documents.language): the
    # configuration is stored per chunk and the search vector is generated from it.
    # Chunks stored before this are English, as they were indexed.
    "ALTER TABLE document_chunks "
    "ADD COLUMN text_search_config regconfig NOT NULL DEFAULT 'english'",
    "ALTER TABLE document_chunks DROP COLUMN search_text",
    "ALTER TABLE document_chunks ADD COLUMN search_text tsvector "
    "GENERATED ALWAYS AS (to_tsvector(text_search_config, content)) STORED",
    "CREATE INDEX document_chunks_search_text ON document_chunks USING gin (search_text)",
)


async def open_pool(url: str, *, min_size: int = 1, max_size: int = 8) -> AsyncConnectionPool:
    """Open a pool on `url` and apply pending migrations."""
    pool = AsyncConnectionPool(
        url, min_size=min_size, max_size=max_size, open=False, kwargs={"autocommit": True}
    )
    try:
        await pool.open(wait=True, timeout=15.0)
    except (psycopg.Error, OSError) as exc:
        await pool.close()
        raise ServiceUnavailable(
            f"cannot reach PostgreSQL at {redact_url(url)} ({exc}); "
            "start it or fix BOT_DATABASE_URL"
        ) from exc
    try:
        await apply_migrations(pool)
    except psycopg.Error as exc:
        await pool.close()
        raise ServiceUnavailable(
            f"PostgreSQL at {redact_url(url)} rejected the schema ({exc}); "
            "it needs the pgvector extension installed"
        ) from exc
    return pool


async def apply_migrations(pool: AsyncConnectionPool) -> int:
    """Run migrations not yet applied; return the schema version."""
    async with pool.connection() as conn:
        await conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
        # One app at a time migrates; others wait here and then find nothing to do.
        await conn.execute("SELECT pg_advisory_lock(7215301)")
        try:
            row = await (await conn.execute("SELECT max(version) FROM schema_version")).fetchone()
            version = int(row[0]) if row and row[0] is not None else 0
            for number, statement in enumerate(MIGRATIONS[version:], start=version + 1):
                async with conn.transaction():
                    await conn.execute(statement)
                    await conn.execute("INSERT INTO schema_version VALUES (%s)", (number,))
                log.info("applied migration %d", number)
                version = number
        finally:
            await conn.execute("SELECT pg_advisory_unlock(7215301)")
    return version
