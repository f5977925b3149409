"""From what a person names (files, folders, URLs) to stored documents.

Each source is loaded, parsed and stored on its own: a bad one is reported with its
reason and the rest go on. Nothing of a failed source is stored, because the store adds
each document in one transaction and parsing finishes before it starts.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from storage.documents.errors import IngestError, TooLarge, UnsupportedContent
from storage.documents.fetch import FetchPolicy, fetch
from storage.documents.models import AddResult, SourceDocument
from storage.documents.parsing import SUFFIX_TYPES, parse
from storage.documents.store import DocumentStore


def is_url(source: str) -> bool:
    return "://" in source


def expand_sources(sources: Iterable[str]) -> list[str]:
    """Folders become the supported files under them (sorted, hidden ones skipped)."""
    expanded: list[str] = []
    for source in sources:
        path = Path(source).expanduser()
        if is_url(source) or not path.is_dir():
            expanded.append(source)
            continue
        for root, folders, files in os.walk(path):
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            expanded.extend(
                str(Path(root) / name)
                for name in sorted(files)
                if not name.startswith(".") and Path(name).suffix.lower() in SUFFIX_TYPES
            )
    return expanded


@dataclass
class Ingestor:
    store: DocumentStore
    fetch_policy: FetchPolicy = field(default_factory=FetchPolicy)
    max_file_bytes: int = 20 * 1024 * 1024

    async def load(self, source: str) -> SourceDocument:
        """Read and parse one file or URL; `IngestError` names what is wrong with it."""
        if is_url(source):
            page = await fetch(source, self.fetch_policy)
            name = page.url.rstrip("/").rsplit("/", 1)[-1] or page.url
            return await asyncio.to_thread(
                parse, page.body, source=source, name=name, content_type=page.content_type
            )
        return await asyncio.to_thread(self._load_file, source)

    def _load_file(self, source: str) -> SourceDocument:
        path = Path(source).expanduser()
        try:
            if not path.exists():
                raise IngestError(source, "no such file or folder")
            if not path.is_file():
                raise UnsupportedContent(source, "not a regular file")
            size = path.stat().st_size
            if size > self.max_file_bytes:
                raise TooLarge(
                    source, f"{size} bytes is over the {self.max_file_bytes} byte cap for a file"
                )
            data = path.read_bytes()
        except OSError as exc:
            raise IngestError(source, f"cannot read it ({exc.strerror or exc})") from exc
        return parse(data, source=str(path), name=path.name)

    async def add(
        self,
        scope: str,
        source: str,
        *,
        added_by: str = "",
        progress: Callable[[int, int], None] | None = None,
    ) -> AddResult:
        document = await self.load(source)
        return await self.store.add(scope, document, added_by=added_by, progress=progress)
