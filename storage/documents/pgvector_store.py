"""`DocumentStore` on PostgreSQL + pgvector, through psycopg 3's async pool.

Retrieval is hybrid, vectors and full text fused by reciprocal rank (the statement is
`hybrid_search`'s). Full text is language-aware: each document's language, guessed at
ingestion (`storage.documents.language`), chooses how its chunks are stemmed, and a
question is matched in each of the store's languages, since which one it is in is not
known. The scope is a bound parameter of every statement; there is no query
without it. pgvector's iterative index scan keeps the HNSW scan going until enough rows
of the scope are found, so a small community in a large index still gets k results.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
from collections.abc import Callable, Sequence

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from storage.documents.chunking import Chunk, chunk_text
from storage.documents.embedder import Embedder, Vectors
from storage.documents.errors import (
    DocumentError,
    DocumentNotFound,
    EmbeddingModelMismatch,
    EmptyDocument,
    IngestError,
)
from storage.documents.hybrid_search import LANGUAGES, search_sql, vector_literal
from storage.documents.language import text_search_config
from storage.documents.models import AddResult, DocumentInfo, Passage, SourceDocument
from storage.documents.store import DocumentStore

INDEX_NAME = "document_chunks"
# The embedding model reads at most this many tokens of a chunk (all-MiniLM-L6-v2: 256).
MAX_EMBEDDED_TOKENS = 256

_DOCUMENT_COLUMNS = (
    "id, scope, title, source, media_type, sha256, added_by, added_at, chunk_count, embedding_model"
)

# A scope with at most this many chunks is searched exactly: fast enough, and the HNSW
# index with a scope filter finds a small scope's nearest chunks poorly when other
# scopes fill most of the index (docs/benchmarks.md).
EXACT_SEARCH_MAX_CHUNKS = 20_000


class PgDocumentStore(DocumentStore):
    """Documents in PostgreSQL. Owns neither the pool nor the embedder: the app passes them."""

    def __init__(
        self,
        pool: AsyncConnectionPool,
        embedder: Embedder,
        *,
        chunk_size: int = 500,
        chunk_overlap: int = 100,
        min_similarity: float = 0.25,
        candidates: int = 40,
        ef_search: int = 100,
        exact_search_max_chunks: int = EXACT_SEARCH_MAX_CHUNKS,
        languages: Sequence[str] = LANGUAGES,
    ) -> None:
        """`languages`: the text-search configurations a document's detected language
        picks from (`simple` for text in none of them); `("english",)` indexes and
        searches everything as English."""
        self._pool = pool
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.min_similarity = min_similarity
        self.candidates = candidates
        self.ef_search = ef_search
        self.exact_search_max_chunks = exact_search_max_chunks
        self.languages = tuple(languages)
        self._search_sql = search_sql(self.languages)
        self._exact_search_sql = search_sql(self.languages, exact=True)
        self._checked = False

    async def initialize(self) -> None:
        """Record this store's embedding model for the index, or refuse a different one."""
        model, dimensions = self.embedder.model_name, self.embedder.dimensions
        async with self._pool.connection() as conn, conn.transaction():
            row = await (
                await conn.execute(
                    "SELECT atttypmod FROM pg_attribute "
                    "WHERE attrelid = 'document_chunks'::regclass AND attname = 'embedding'"
                )
            ).fetchone()
            if row is None or int(row[0]) != dimensions:
                raise EmbeddingModelMismatch(
                    f"the document index holds {row[0] if row else '?'}-dimensional vectors; "
                    f"{model} makes {dimensions}"
                )
            await conn.execute(
                "INSERT INTO embedding_index (name, model, dimensions) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                (INDEX_NAME, model, dimensions),
            )
            stored = await (
                await conn.execute(
                    "SELECT model FROM embedding_index WHERE name = %s FOR UPDATE", (INDEX_NAME,)
                )
            ).fetchone()
            if stored is not None and stored[0] != model:
                used = await (
                    await conn.execute("SELECT EXISTS (SELECT 1 FROM document_chunks)")
                ).fetchone()
                if used is not None and used[0]:
                    raise EmbeddingModelMismatch(
                        f"the document index holds vectors of {stored[0]}, not {model}; "
                        f"configure {stored[0]}, or remove every document before switching"
                    )
                # Nothing was embedded with the old model: the index is free to change.
                await conn.execute(
                    "UPDATE embedding_index SET model = %s, dimensions = %s WHERE name = %s",
                    (model, dimensions, INDEX_NAME),
                )
        self._checked = True

    async def _ensure_checked(self) -> None:
        if not self._checked:
            await self.initialize()

    async def add(
        self,
        scope: str,
        document: SourceDocument,
        *,
        added_by: str = "",
        progress: Callable[[int, int], None] | None = None,
    ) -> AddResult:
        await self._ensure_checked()
        digest = hashlib.sha256(document.text.encode("utf-8")).hexdigest()
        existing = await self._by_hash(scope, digest)
        if existing is not None:
            return AddResult(existing, duplicate=True)
        chunks = chunk_text(document.text, self.chunk_size, self.chunk_overlap)
        if not chunks:
            raise EmptyDocument(document.source, "empty: there is no text to add")
        texts = [chunk.text for chunk in chunks]
        done = 0

        def step(count: int) -> None:
            nonlocal done
            done += count
            if progress is not None:
                progress(done, len(texts))

        vectors = await self.embedder.embed(texts, step)
        tokens = await asyncio.to_thread(self.embedder.count_tokens, texts)
        try:
            info = await self._insert(scope, document, digest, added_by, chunks, vectors, tokens)
        except psycopg.DataError as exc:
            # The transaction rolled back: nothing of this document is stored.
            raise IngestError(document.source, f"the database refused its text ({exc})") from exc
        if info is None:
            # Another process added the same content since the check above.
            raced = await self._by_hash(scope, digest)
            if raced is None:
                raise DocumentError(f"{document.source}: could not be stored; try again")
            return AddResult(raced, duplicate=True)
        truncated = sum(1 for count in tokens if count >= MAX_EMBEDDED_TOKENS)
        warnings = (
            (
                f"{truncated} chunk(s) are longer than the embedding model reads "
                f"({MAX_EMBEDDED_TOKENS} tokens); their ends are found by full-text search only",
            )
            if truncated
            else ()
        )
        return AddResult(info, warnings=warnings)

    async def _insert(
        self,
        scope: str,
        document: SourceDocument,
        digest: str,
        added_by: str,
        chunks: Sequence[Chunk],
        vectors: Vectors,
        tokens: Sequence[int],
    ) -> DocumentInfo | None:
        """The document row and its chunks in one transaction; None if the hash is taken."""
        async with self._pool.connection() as conn, conn.transaction():
            # Holds the model row against a concurrent switch until these rows are in.
            await conn.execute(
                "SELECT model FROM embedding_index WHERE name = %s FOR SHARE", (INDEX_NAME,)
            )
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                "INSERT INTO documents (scope, title, source, media_type, sha256, added_by, "
                "chunk_count, embedding_model) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
                f"ON CONFLICT (scope, sha256) DO NOTHING RETURNING {_DOCUMENT_COLUMNS}",
                (
                    scope,
                    document.title,
                    document.source,
                    document.media_type,
                    digest,
                    added_by,
                    len(chunks),
                    self.embedder.model_name,
                ),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            info = DocumentInfo(**row)
            config = self._language_of(document.text)
            async with cursor.copy(
                "COPY document_chunks (document_id, scope, position, content, token_count, "
                "embedding, metadata, text_search_config) FROM STDIN"
            ) as copy:
                for position, (chunk, vector, count) in enumerate(
                    zip(chunks, vectors, tokens, strict=True)
                ):
                    metadata: dict[str, int] = {"start": chunk.start}
                    if document.page_starts:
                        page = bisect.bisect_right(document.page_starts, chunk.start)
                        metadata["page"] = max(page, 1)
                    await copy.write_row(
                        (
                            info.id,
                            scope,
                            position,
                            chunk.text,
                            count,
                            vector_literal(vector),
                            Jsonb(metadata),
                            config,
                        )
                    )
        return info

    def _language_of(self, text: str) -> str:
        if len(self.languages) == 1:
            return self.languages[0]
        return text_search_config(text, self.languages)

    async def _by_hash(self, scope: str, digest: str) -> DocumentInfo | None:
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE scope = %s AND sha256 = %s",
                (scope, digest),
            )
            row = await cursor.fetchone()
        return DocumentInfo(**row) if row else None

    async def list_documents(self, scope: str) -> list[DocumentInfo]:
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(
                f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE scope = %s ORDER BY id",
                (scope,),
            )
            return [DocumentInfo(**row) for row in await cursor.fetchall()]

    async def get(self, scope: str, document_id: int) -> DocumentInfo:
        return await self._one_document(
            f"SELECT {_DOCUMENT_COLUMNS} FROM documents WHERE scope = %s AND id = %s",
            scope,
            document_id,
        )

    async def _one_document(self, sql: str, scope: str, document_id: int) -> DocumentInfo:
        """Run `sql` (filtered by scope and id, returning the document's columns)."""
        async with self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=dict_row)
            await cursor.execute(sql, (scope, document_id))
            row = await cursor.fetchone()
        if row is None:
            raise DocumentNotFound(f"there is no document #{document_id} here; see `docs list`")
        return DocumentInfo(**row)

    async def document_text(self, scope: str, document_id: int) -> str:
        await self.get(scope, document_id)
        async with self._pool.connection() as conn:
            rows = await (
                await conn.execute(
                    "SELECT content, (metadata->>'start')::int FROM document_chunks "
                    "WHERE scope = %s AND document_id = %s ORDER BY position",
                    (scope, document_id),
                )
            ).fetchall()
        text = ""
        end = 0
        for content, start in rows:
            if not text or start is None or start >= end:
                text += ("\n\n" if text else "") + content
            elif start + len(content) > end:
                # Overlap with the previous chunk: keep only what is new.
                text += content[end - start :]
            end = (start or 0) + len(content)
        return text

    async def remove(self, scope: str, document_id: int) -> DocumentInfo:
        # Chunks go with it: the foreign key cascades, in this one statement.
        return await self._one_document(
            f"DELETE FROM documents WHERE scope = %s AND id = %s RETURNING {_DOCUMENT_COLUMNS}",
            scope,
            document_id,
        )

    async def search(self, scope: str, query: str, k: int = 5) -> list[Passage]:
        if not query.strip() or k < 1:
            return []
        await self._ensure_checked()
        vector = (await self.embedder.embed([query]))[0]
        candidates = max(self.candidates, 4 * k)
        params = {
            "scope": scope,
            "vector": vector_literal(vector),
            "text": query,
            "candidates": candidates,
            "floor": self.min_similarity,
            "k": k,
        }
        try:
            async with self._pool.connection() as conn, conn.transaction():
                # SET LOCAL: these apply to this transaction only, not to the pooled session.
                # The same round trip asks how many chunks the scope holds.
                row = await (
                    await conn.execute(
                        "SELECT set_config('hnsw.ef_search', %s, true), "
                        "set_config('hnsw.iterative_scan', 'relaxed_order', true), "
                        "(SELECT coalesce(sum(chunk_count), 0) FROM documents WHERE scope = %s)",
                        (str(max(self.ef_search, candidates)), scope),
                    )
                ).fetchone()
                exact = row is not None and int(row[2]) <= self.exact_search_max_chunks
                sql = self._exact_search_sql if exact else self._search_sql
                rows = await (await conn.execute(sql, params)).fetchall()
        except psycopg.errors.UndefinedObject as exc:
            raise DocumentError(
                f"PostgreSQL's pgvector is too old for document search ({exc}); it needs 0.8+"
            ) from exc
        return [
            Passage(
                document_id=int(document_id),
                title=str(title),
                position=int(position),
                text=str(content),
                score=float(similarity),
                source=str(source),
            )
            for document_id, title, position, content, source, similarity in rows
        ]
