"""The hybrid search statement of `PgDocumentStore`, and pgvector's text form of a vector.

The nearest chunks by cosine distance (HNSW index) and the best full-text matches (GIN
index) are fused by reciprocal rank, so an exact term such as an error code is found even
where the embedding blurs it, and a paraphrase is found where no word matches. A question
is matched in each of the store's languages, since which one it is in is not known. Apart
from the store because it is one statement built once, which the retrieval tests and the
RAG benchmark also run on their own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np

from storage.documents.language import SIMPLE

# Reciprocal rank fusion constant (Cormack et al. 2009): damps the weight of the top ranks.
RRF_K = 60
# {order} is the distance (the HNSW index serves it) or the distance plus zero (an
# expression the index cannot serve, so PostgreSQL ranks the scope's rows exactly).
_SEARCH_TEMPLATE = """
WITH semantic AS MATERIALIZED (
    SELECT id, embedding <=> %(vector)s::vector AS distance
    FROM document_chunks
    WHERE scope = %(scope)s
    ORDER BY {order}
    LIMIT %(candidates)s
), semantic_ranked AS (
    -- relaxed_order scans may return rows slightly out of order: rank them again.
    SELECT id, row_number() OVER (ORDER BY distance) AS rank FROM semantic
), lexical AS (
    SELECT id, row_number() OVER (ORDER BY ts_rank_cd(search_text, query) DESC) AS rank
    FROM document_chunks, CAST(({query}) AS tsquery) AS query
    WHERE scope = %(scope)s AND search_text @@ query
    ORDER BY ts_rank_cd(search_text, query) DESC
    LIMIT %(candidates)s
), fused AS (
    SELECT id, sum(1.0 / ({rrf_k} + rank)) AS rrf
    FROM (SELECT id, rank FROM semantic_ranked UNION ALL SELECT id, rank FROM lexical) AS ranks
    GROUP BY id
)
SELECT c.document_id, d.title, c.position, c.content, d.source,
       1 - (c.embedding <=> %(vector)s::vector) AS similarity
FROM fused f
JOIN document_chunks c ON c.id = f.id
JOIN documents d ON d.id = c.document_id
WHERE c.scope = %(scope)s AND d.scope = %(scope)s
  AND 1 - (c.embedding <=> %(vector)s::vector) >= %(floor)s
ORDER BY f.rrf DESC, similarity DESC
LIMIT %(k)s
"""
# Languages documents are indexed in; with more than one, text in none of them is
# indexed, and questions are also searched, with `simple` (no stemming).
LANGUAGES: tuple[str, ...] = ("english", "spanish")
_CONFIG_NAME = re.compile(r"^[a-z_]+$")


def _text_query(languages: Sequence[str]) -> str:
    """The question as a tsquery in every configuration: any of its words, not all of
    them (plainto_tsquery ANDs them)."""
    parts = []
    for config in languages if len(languages) == 1 else (*languages, SIMPLE):
        if not _CONFIG_NAME.match(config):  # names go into SQL text: only plain words
            raise ValueError(f"{config!r} is not a text search configuration name")
        parts.append(
            f"CAST(replace(plainto_tsquery('{config}', %(text)s)::text, ' & ', ' | ') AS tsquery)"
        )
    return " || ".join(parts)


def search_sql(languages: Sequence[str] = LANGUAGES, *, exact: bool = False) -> str:
    """The hybrid search statement; `exact` ranks the scope's rows without the index."""
    order = "(embedding <=> %(vector)s::vector) + 0" if exact else "distance"
    return _SEARCH_TEMPLATE.format(order=order, rrf_k=RRF_K, query=_text_query(languages))


def vector_literal(vector: Sequence[float] | np.ndarray[Any, Any]) -> str:
    """pgvector's text form; sent as text so no per-connection type registration is needed."""
    return "[" + ",".join(f"{float(value):.7g}" for value in vector) + "]"
