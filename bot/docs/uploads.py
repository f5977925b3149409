"""A document uploaded in a chat, on any platform: refused before download when it must
be, then downloaded and added, with progress in the reply's status line.

A platform supplies what it knows of the file and how to download it (`Upload`); the
checks (role, type, size, the platform's own download cap), the order of the steps and
what the person is told are the same everywhere.
"""

from __future__ import annotations

from bot.docs.service import DocsService, megabytes
from bot.errors import InvalidRequest
from bot.failures import describe_failure
from bot.reply_sink import ReplySink
from bot.requests import Upload
from bot.scope import Scope

# The status line's tool name (see `bot.delivery.stream.status_line`).
UPLOAD_STATUS = "add_document"


async def add_upload(
    docs: DocsService | None, scope: Scope, upload: Upload, sink: ReplySink
) -> None:
    """Add `upload` to `scope`'s documents, telling the person how it goes in `sink`."""
    name = upload.filename
    try:
        if docs is None:
            raise InvalidRequest("documents are not available in this deployment")
        docs.check_upload(scope, name, upload.size_bytes, upload.content_type)
        _check_download_limit(upload)
    except Exception as exc:
        await sink.fail(describe_failure(exc, f"checking upload {name!r}"))
        return
    await sink.start()

    async def progress(line: str) -> None:
        await sink.tool_status(UPLOAD_STATUS, line)

    try:
        await progress(f"downloading {name}")
        data = await upload.download()
        answer = await docs.add_upload(scope, name, data, upload.content_type, progress=progress)
    except Exception as exc:
        await sink.fail(describe_failure(exc, f"adding upload {name!r}"))
        return
    await sink.append(answer)
    await sink.finish()


def _check_download_limit(upload: Upload) -> None:
    limit, size = upload.download_limit_bytes, upload.size_bytes
    if limit is not None and size is not None and size > limit:
        raise InvalidRequest(
            f"{upload.filename!r} is {megabytes(size)}; bots can download files of at most "
            f"{megabytes(limit)} here. Put it online and send /docs add URL instead."
        )
