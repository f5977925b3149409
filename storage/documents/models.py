"""The values that cross the document store's boundary: what goes in, what comes out."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class SourceDocument:
    """Extracted text of one source, ready to chunk: what parsers and the fetcher produce.

    `page_starts` holds the character offset where each PDF page begins, so passages can
    say which page they come from; it is empty for other formats.
    """

    title: str
    source: str
    media_type: str
    text: str
    page_starts: tuple[int, ...] = ()


@dataclass(frozen=True)
class Passage:
    """One retrieved chunk, with what a citation needs.

    `position` is the chunk's 0-based place in its document; `score` is the cosine
    similarity of the chunk to the query (the relevance floor applies to it). Lists of
    passages are ordered by fused rank (semantic and full-text), best first.
    """

    document_id: int
    title: str
    position: int
    text: str
    score: float
    source: str

    def citation(self) -> str:
        """How an answer names this passage: the title and the part it comes from."""
        return f"{self.title} (part {self.position + 1})"


@dataclass(frozen=True)
class DocumentInfo:
    id: int
    scope: str
    title: str
    source: str
    media_type: str
    sha256: str
    added_by: str
    added_at: datetime
    chunk_count: int
    embedding_model: str


@dataclass(frozen=True)
class AddResult:
    """What `add` did: a new document, or the existing one with the same content."""

    document: DocumentInfo
    duplicate: bool = False
    warnings: tuple[str, ...] = field(default=())
