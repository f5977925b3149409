"""Downloading a document sent to the chat ("/docs add" as its caption, or as a reply to
it) or a clip to transcribe; `bot.docs.uploads` and `bot.speech.replies` do the checks,
the work and the progress."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from telegram import Audio, Bot, Document, Voice
from telegram.error import TelegramError

from bot.errors import InvalidRequest
from bot.platforms.telegram.routing import Clip
from bot.requests import Upload

log = logging.getLogger(__name__)


def _downloader(bot: Bot, file_id: str) -> Callable[[], Awaitable[bytes]]:
    async def download() -> bytes:
        try:
            file = await bot.get_file(file_id)
            return bytes(await file.download_as_bytearray())
        except TelegramError as exc:
            log.warning("downloading a file failed: %s", type(exc).__name__)
            raise InvalidRequest(
                "Telegram did not hand over the file; send it again in a moment."
            ) from exc

    return download


def telegram_upload(bot: Bot, document: Document, download_limit: int | None) -> Upload:
    """`document` as an upload; it is downloaded only once the checks have passed."""
    return Upload(
        filename=document.file_name or f"{document.file_unique_id}.txt",
        size_bytes=document.file_size,
        content_type=document.mime_type,
        download=_downloader(bot, document.file_id),
        download_limit_bytes=download_limit,
    )


def telegram_clip(bot: Bot, clip: Clip, download_limit: int | None) -> Upload:
    """A voice note, audio file or video note as a clip to transcribe, fetched once the
    checks (size, announced length) have passed."""
    name = getattr(clip, "file_name", None) or f"{clip.file_unique_id}.ogg"
    mime = clip.mime_type if isinstance(clip, Voice | Audio | Document) else "video/mp4"
    # Read from the wire form: PTB 22 warns on `.duration` (it becomes a timedelta in 23).
    duration = clip.to_dict().get("duration")
    return Upload(
        filename=name,
        size_bytes=clip.file_size,
        content_type=mime,
        download=_downloader(bot, clip.file_id),
        download_limit_bytes=download_limit,
        duration_s=float(duration) if isinstance(duration, int | float) else None,
    )
