"""Local stand-ins for the tool benchmark: web results, the community's documents, and the
held-out prompt set.

The documents are the two guides in `benchmarks/data/` (an English makers' handbook and
a Spanish astronomy club guide), chunked like the store chunks them and ranked by MiniLM
cosine similarity with the store's relevance floor, so the router's document probe sees
the scores it would see in production.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from agent_graph.tools.web_search import SearchResult
from storage.documents.chunking import chunk_text
from storage.documents.embedder import Embedder

DATA = Path(__file__).resolve().parent / "data"
GUIDES = ("community_handbook.md", "guia_comunidad.md")
HELD_OUT = DATA / "tool_prompts_heldout.jsonl"
SCOPE = "bench:community"
STORE_FLOOR = 0.25  # PgDocumentStore's default min_similarity

Need = Literal["calculator", "web_search", "search_documents", "none"]


@dataclass(frozen=True)
class Case:
    prompt: str
    language: Literal["en", "es"]
    needs: Need
    answer: str = ""  # for calculator cases: the number the answer must contain


def held_out_cases(path: Path = HELD_OUT) -> tuple[Case, ...]:
    """The held-out prompts: written before the router was tuned, never tuned on."""
    rows: list[dict[str, Any]] = [
        json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line
    ]
    return tuple(Case(**row) for row in rows)


class FixedSearch:
    name = "fixed"

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        return [SearchResult(f"About {query}", "https://example.org/result", f"Facts on {query}.")]


@dataclass(frozen=True)
class GuidePassage:
    document_id: int
    title: str
    position: int
    text: str
    score: float
    source: str


class GuideDocuments:
    """A `DocumentSearch` over the two guides (or the files `paths`), for `SCOPE` only."""

    def __init__(
        self, embedder: Embedder, paths: Sequence[Path] = tuple(DATA / name for name in GUIDES)
    ) -> None:
        self._embedder = embedder
        self._chunks: list[tuple[int, str, int, str, str]] = []
        for document_id, path in enumerate(paths, start=1):
            name = path.name
            text = path.read_text(encoding="utf-8")
            title = text.splitlines()[0].lstrip("# ").strip()
            for position, chunk in enumerate(chunk_text(text, 500, 100)):
                self._chunks.append((document_id, title, position, chunk.text, name))
        self._vectors = embedder.embed_sync([chunk[3] for chunk in self._chunks])

    async def search(self, scope: str, query: str, k: int = 5) -> list[GuidePassage]:
        if scope != SCOPE or not query.strip():
            return []
        similarity = self._vectors @ (await self._embedder.embed([query]))[0]
        best = [int(i) for i in np.argsort(-similarity)[:k] if similarity[i] >= STORE_FLOOR]
        return [
            GuidePassage(*self._chunks[i][:4], float(similarity[i]), self._chunks[i][4])
            for i in best
        ]
