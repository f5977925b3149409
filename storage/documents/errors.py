"""Errors raised by `storage.documents`; each message names the reason and what to do.

DocumentError (a StorageError)
├── IngestError              a source cannot become a document (bad input); nothing is stored
│   ├── UnsupportedContent   binary, unknown type, encrypted or malformed PDF, no text
│   ├── EmptyDocument        the source holds no text
│   └── TooLarge             over the size cap
├── FetchError               a URL could not be fetched (network, status, time cap)
│   └── FetchRefused         the URL is refused by policy (scheme, address, credentials)
├── EmbedderError            the embedding model cannot be loaded or used
├── EmbeddingModelMismatch   the index holds vectors of another embedding model
└── DocumentNotFound         no document with that id in this scope

`IngestError` and `FetchError` carry the source they are about, so a CLI adding many
sources reports each failure and goes on with the rest.
"""

from __future__ import annotations

from storage.errors import StorageError


class DocumentError(StorageError):
    """Base class for document-store failures."""


class IngestError(DocumentError):
    def __init__(self, source: str, reason: str) -> None:
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


class UnsupportedContent(IngestError):
    pass


class EmptyDocument(IngestError):
    pass


class TooLarge(IngestError):
    pass


class FetchError(IngestError):
    pass


class FetchRefused(FetchError):
    pass


class EmbedderError(DocumentError):
    pass


class EmbeddingModelMismatch(DocumentError):
    pass


class DocumentNotFound(DocumentError):
    pass
