"""Adding a document sent to the chat ("/docs add" as its caption, or as a reply to it).

Everything that can refuse the file (the asker's role, its type, its size, the Bot API's
download limit) is checked before it is downloaded; the download and the ingestion then
report progress in one status message, which the answer replaces.
"""

from __future__ import annotations

import logging

from telegram import Bot, Document
from telegram.error import TelegramError

from bot.delivery.stream import StreamingReply
from bot.docs_commands import DocsCommands
from bot.errors import InvalidRequest
from bot.failures import describe_failure
from bot.scope import Scope

log = logging.getLogger(__name__)

# The status line's tool name (see `bot.delivery.stream.status_line`).
_STATUS = "add_document"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


class DocumentUploads:
    def __init__(self, bot: Bot, docs: DocsCommands | None, download_limit: int | None) -> None:
        self._bot = bot
        self._docs = docs
        self._download_limit = download_limit

    async def add(self, scope: Scope, document: Document, reply: StreamingReply[int]) -> None:
        """Add `document` to `scope`'s documents, telling the person how it goes in `reply`."""
        name = document.file_name or f"{document.file_unique_id}.txt"
        try:
            docs = self._docs
            if docs is None:
                raise InvalidRequest("documents are not available in this deployment")
            docs.check_upload(scope, name, document.file_size, document.mime_type)
            self._check_download_limit(name, document.file_size)
        except Exception as exc:
            await reply.fail(describe_failure(exc, f"checking upload {name!r}"))
            return
        await reply.start()

        async def progress(line: str) -> None:
            await reply.tool_status(_STATUS, line)

        try:
            await progress(f"downloading {name}")
            data = await self._download(document)
            answer = await docs.add_upload(scope, name, data, document.mime_type, progress=progress)
        except Exception as exc:
            await reply.fail(describe_failure(exc, f"adding upload {name!r}"))
            return
        await reply.append(answer)
        await reply.finish()

    def _check_download_limit(self, name: str, size: int | None) -> None:
        if self._download_limit is not None and size is not None and size > self._download_limit:
            raise InvalidRequest(
                f"{name!r} is {_megabytes(size)}; Telegram lets bots download files of at "
                f"most {_megabytes(self._download_limit)}. Put it online and send "
                "/docs add URL instead."
            )

    async def _download(self, document: Document) -> bytes:
        try:
            file = await self._bot.get_file(document.file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            log.warning("downloading an upload failed: %s", type(exc).__name__)
            raise InvalidRequest(
                "Telegram did not hand over the file; send it again in a moment."
            ) from exc
