"""A community's documents: ingestion, embeddings and hybrid retrieval on pgvector.

`DocumentStore` (store.py) is the seam the agent's document-search tool and the CLI use;
`PgDocumentStore` implements it on PostgreSQL + pgvector with an `Embedder`
(`MiniLMEmbedder` by default). `Ingestor` turns files, folders and URLs into documents.
"""

from storage.documents.embedder import Embedder, RecentEmbeddings
from storage.documents.errors import (
    DocumentError,
    DocumentNotFound,
    EmbedderError,
    EmbeddingModelMismatch,
    EmptyDocument,
    FetchError,
    FetchRefused,
    IngestError,
    TooLarge,
    UnsupportedContent,
)
from storage.documents.fetch import FetchPolicy
from storage.documents.ingest import Ingestor, expand_sources
from storage.documents.minilm import MiniLMEmbedder
from storage.documents.models import AddResult, DocumentInfo, Passage, SourceDocument
from storage.documents.pgvector_store import PgDocumentStore
from storage.documents.store import DocumentStore

__all__ = [
    "AddResult",
    "DocumentError",
    "DocumentInfo",
    "DocumentNotFound",
    "DocumentStore",
    "Embedder",
    "EmbedderError",
    "EmbeddingModelMismatch",
    "EmptyDocument",
    "FetchError",
    "FetchPolicy",
    "FetchRefused",
    "IngestError",
    "Ingestor",
    "MiniLMEmbedder",
    "Passage",
    "PgDocumentStore",
    "RecentEmbeddings",
    "SourceDocument",
    "TooLarge",
    "UnsupportedContent",
    "expand_sources",
]
