"""Downloading a document sent to the chat ("/docs add" as its caption, or as a reply to
it); `bot.docs.uploads` does the checks, the adding and the progress."""

from __future__ import annotations

import logging

from telegram import Bot, Document
from telegram.error import TelegramError

from bot.errors import InvalidRequest
from bot.requests import Upload

log = logging.getLogger(__name__)


def telegram_upload(bot: Bot, document: Document, download_limit: int | None) -> Upload:
    """`document` as an upload; it is downloaded only once the checks have passed."""

    async def download() -> bytes:
        try:
            file = await bot.get_file(document.file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            log.warning("downloading an upload failed: %s", type(exc).__name__)
            raise InvalidRequest(
                "Telegram did not hand over the file; send it again in a moment."
            ) from exc

    return Upload(
        filename=document.file_name or f"{document.file_unique_id}.txt",
        size_bytes=document.file_size,
        content_type=document.mime_type,
        download=download,
        download_limit_bytes=download_limit,
    )
