"""The community's documents: the one service the chat commands, uploads and the
`docs` command line all call.

Anyone may list documents, ask questions and ask for summaries; adding and removing
change what the whole community's answers draw on, so they are for admins. Local paths
are the operator's machine: only the operator (the terminal user) may add them; admins
elsewhere add URLs or upload files (`check_upload` before the platform downloads one,
`add_upload` with its bytes). What a target names (a document's number or a URL) is
decided in one place, `read_target`, and answers from documents are sampled by one
rule, `document_sampling`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import PurePosixPath
from typing import Any

from langchain_core.language_models import BaseChatModel

from bot.docs.qa import Answer, Summary, ask, summarize
from bot.errors import InvalidRequest, PermissionDenied
from bot.scope import Role, Scope
from storage.documents import DocumentStore, Ingestor
from storage.documents.ingest import is_url
from storage.documents.models import AddResult, DocumentInfo
from storage.documents.parsing import CONTENT_TYPES, SUFFIX_TYPES, parse

# Answers from documents should stick to the text: never hotter than this.
DOCUMENT_TEMPERATURE = 0.2
# Where a progress message goes: the platform edits one status message with it.
Progress = Callable[[str], Coroutine[Any, Any, None]]
# Progress is reported at these fractions of the passages embedded.
_PROGRESS_STEPS = (0.25, 0.5, 0.75)


def document_sampling(sampling: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sampling answers from documents use: the given settings, kept cool."""
    chosen = dict(sampling or {})
    chosen["temperature"] = min(
        float(chosen.get("temperature", DOCUMENT_TEMPERATURE)), DOCUMENT_TEMPERATURE
    )
    return chosen


def read_target(target: str) -> int | str:
    """What `/docs summarize TARGET` names: a document's number (`12`, `#12`) or a URL."""
    text = target.strip()
    if is_url(text):
        return text
    if text.lstrip("#").isdigit():
        return int(text.lstrip("#"))
    raise InvalidRequest(f"{text[:80]!r} is neither a document's number (see /docs list) nor a URL")


class DocsService:
    def __init__(
        self,
        store: DocumentStore,
        model: BaseChatModel,
        sampling: dict[str, Any] | None = None,
        *,
        max_upload_bytes: int = 20 * 1024 * 1024,
        context_tokens: int = 4096,
    ) -> None:
        self.store = store
        self._model = model
        self._sampling = document_sampling(sampling)
        self.max_upload_bytes = max_upload_bytes
        self._context_tokens = context_tokens

    async def ask(self, documents: str, question: str, *, k: int = 5) -> Answer:
        return await ask(self.store, self._model, documents, question, k=k, sampling=self._sampling)

    async def summarize(
        self, documents: str, target: str, *, points: int = 5, language: str = "English"
    ) -> Summary:
        named = read_target(target)
        if isinstance(named, str):
            text = (await Ingestor(self.store).load(named)).text
        else:
            text = await self.store.document_text(documents, named)
        return await summarize(
            self._model,
            text,
            points=points,
            language=language,
            context_tokens=self._context_tokens,
            sampling=self._sampling,
        )

    async def list(self, documents: str) -> list[DocumentInfo]:
        return await self.store.list_documents(documents)

    async def add(self, scope: Scope, source: str) -> str:
        """Add a URL (admins) or a local path (the operator) to `scope`'s documents."""
        self._require(scope, Role.ADMIN, "add documents")
        if not is_url(source):
            self._require(scope, Role.OPERATOR, "add files from this machine")
        result = await Ingestor(self.store).add(scope.server_key, source, added_by=scope.actor)
        return _added(result)

    async def remove(self, scope: Scope, document: int) -> str:
        self._require(scope, Role.ADMIN, "remove documents")
        removed = await self.store.remove(scope.server_key, document)
        return f"Removed #{removed.id} {removed.title!r}."

    async def render_list(self, documents: str) -> str:
        found = await self.list(documents)
        if not found:
            return "No documents here yet; an admin can add some with /docs add URL."
        lines = [f"#{info.id} {info.title} ({info.chunk_count} passages)" for info in found]
        return "Documents here:\n" + "\n".join(lines)

    def check_upload(
        self, scope: Scope, filename: str, size_bytes: int | None, content_type: str | None
    ) -> None:
        """Refuse an upload before it is downloaded: the asker's role, the file's type (by
        name or declared type) and its size. Raises a `BotError` saying what to do."""
        self._require(scope, Role.ADMIN, "add documents")
        declared = (content_type or "").split(";")[0].strip().lower()
        suffix = PurePosixPath(filename).suffix.lower()
        if suffix not in SUFFIX_TYPES and declared not in CONTENT_TYPES:
            kinds = ", ".join(sorted(SUFFIX_TYPES))
            raise InvalidRequest(
                f"I can't read {filename!r}: send text, Markdown, HTML or PDF ({kinds})."
            )
        if size_bytes is not None and size_bytes > self.max_upload_bytes:
            raise InvalidRequest(
                f"{filename!r} is {megabytes(size_bytes)}; the limit is "
                f"{megabytes(self.max_upload_bytes)}. Send a smaller file or a link to it."
            )

    async def add_upload(
        self,
        scope: Scope,
        filename: str,
        data: bytes,
        content_type: str | None = None,
        progress: Progress | None = None,
    ) -> str:
        """Add an uploaded file's bytes to the scope's documents; the reply to show."""
        self.check_upload(scope, filename, len(data), content_type)
        if progress is not None:
            await progress(f"Reading {filename}…")
        document = await asyncio.to_thread(
            parse, data, source=filename, name=filename, content_type=content_type
        )
        report = _ProgressReport(progress, filename)
        result = await self.store.add(
            scope.server_key, document, added_by=scope.actor, progress=report.update
        )
        await report.drain()
        return _added(result)

    @staticmethod
    def _require(scope: Scope, role: Role, what: str) -> None:
        if scope.role < role:
            who = "the bot's operator" if role is Role.OPERATOR else "admins"
            raise PermissionDenied(f"only {who} can {what}")


class _ProgressReport:
    """Bridges the store's synchronous progress callback to an async status message,
    reporting a few steps rather than every batch."""

    def __init__(self, progress: Progress | None, filename: str) -> None:
        self._progress = progress
        self._filename = filename
        self._next_step = 0
        self._pending: list[asyncio.Task[None]] = []

    def update(self, done: int, total: int) -> None:
        if self._progress is None or total <= 0 or self._next_step >= len(_PROGRESS_STEPS):
            return
        if done / total < _PROGRESS_STEPS[self._next_step]:
            return
        while (
            self._next_step < len(_PROGRESS_STEPS)
            and done / total >= _PROGRESS_STEPS[self._next_step]
        ):
            self._next_step += 1
        message = f"Adding {self._filename}: {done}/{total} passages…"
        self._pending.append(asyncio.get_running_loop().create_task(self._progress(message)))

    async def drain(self) -> None:
        # A progress message that could not be shown must not undo a completed addition.
        await asyncio.gather(*self._pending, return_exceptions=True)


def _added(result: AddResult) -> str:
    info = result.document
    if result.duplicate:
        return f"Already here: #{info.id} {info.title!r}."
    return f"Added #{info.id} {info.title!r} ({info.chunk_count} passages)."


def megabytes(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"
