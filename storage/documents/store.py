"""The `DocumentStore` seam: a community's documents, added, listed, removed and searched.

Every method takes the scope (a community: `Scope.server_key`, e.g. "discord:12345")
first; an implementation must never let one scope see another's documents.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable

from storage.documents.embedder import Embedder
from storage.documents.models import AddResult, DocumentInfo, Passage, SourceDocument


class DocumentStore(ABC):
    # The model that embeds passages and questions; callers reuse it (e.g. to pick the
    # sentences of a passage that answer a question, `storage.documents.evidence`).
    embedder: Embedder

    @abstractmethod
    async def add(
        self,
        scope: str,
        document: SourceDocument,
        *,
        added_by: str = "",
        progress: Callable[[int, int], None] | None = None,
    ) -> AddResult:
        """Chunk, embed and store `document` in one transaction.

        Content already in the scope (same text hash) is not stored again: the result
        names the existing document with `duplicate=True`. `progress(done, total)` is
        called as chunks are embedded.
        """

    @abstractmethod
    async def list_documents(self, scope: str) -> list[DocumentInfo]:
        """The scope's documents, oldest first."""

    @abstractmethod
    async def get(self, scope: str, document_id: int) -> DocumentInfo:
        """One document of the scope; `DocumentNotFound` if it is not there."""

    @abstractmethod
    async def document_text(self, scope: str, document_id: int) -> str:
        """The document's text rebuilt from its chunks (overlap removed), for summaries."""

    @abstractmethod
    async def remove(self, scope: str, document_id: int) -> DocumentInfo:
        """Delete a document and its chunks; `DocumentNotFound` if it is not in the scope."""

    @abstractmethod
    async def search(self, scope: str, query: str, k: int = 5) -> list[Passage]:
        """The passages of the scope most relevant to `query`, best first, at most `k`.

        Passages under the relevance floor are left out, so an empty list means the
        documents do not cover the question.
        """
