"""Log lines as text or as JSON (`BOT_LOG_FORMAT=json`), each carrying the context of the
work it belongs to, and never a credential.

Context travels in `contextvars`: a field registered with `context_field` and set at the
start of a piece of work (the bot sets the conversation and platform of a turn, the
inference client the id of each job it queues) is copied into every record logged in
that context, including in tasks started from it, without passing it to each call.
JSON lines carry the set fields as keys; text lines append them as `key=value`.

Every record is scrubbed of chat-platform tokens before any handler sees it: HTTP client
libraries log request URLs, and Telegram's carry the bot token in the path.
"""

from __future__ import annotations

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

_FIELDS: dict[str, ContextVar[str | None]] = {}


def context_field(name: str) -> ContextVar[str | None]:
    """The context variable whose value (when set) every log record carries as `name`."""
    if name not in _FIELDS:
        _FIELDS[name] = ContextVar(f"log_{name}", default=None)
    return _FIELDS[name]


JOB_ID = context_field("job_id")

_SECRETS = (
    # Telegram bot token, in a Bot API URL (/bot<id>:<secret>/) or alone.
    re.compile(r"(?<!\d)\d{6,12}:[A-Za-z0-9_-]{30,}"),
    # Discord bot token: three base64url parts.
    re.compile(r"\b[A-Za-z0-9_-]{23,28}\.[A-Za-z0-9_-]{6,7}\.[A-Za-z0-9_-]{27,}"),
    # Passwords in connection URLs (redis://:pw@, postgresql://user:pw@).
    re.compile(r"(?<=://)[^/@\s:]*:[^/@\s]+(?=@)"),
)


def redact(text: str) -> str:
    for pattern in _SECRETS:
        text = pattern.sub("[redacted]", text)
    return text


class ContextFilter(logging.Filter):
    """Adds the context fields to each record and scrubs credentials from its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in _FIELDS.items():
            setattr(record, name, var.get())
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def _context(record: logging.LogRecord) -> dict[str, str]:
    return {
        name: str(value) for name in _FIELDS if (value := getattr(record, name, None)) is not None
    }


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the context fields, and the
    traceback (as `exc`) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **_context(record),
        }
        if record.exc_info:
            line["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = " ".join(f"{key}={value}" for key, value in _context(record).items())
        return f"{text} [{fields}]" if fields else text


def configure_logging(level: str, log_format: str | None = None) -> None:
    """Send the root logger's records to stderr as text, or as JSON when `log_format` is
    "json" (case-insensitive). Replaces handlers set before, so it may be called again."""
    if log_format and log_format.lower() not in ("json", "text"):
        raise ValueError(f"BOT_LOG_FORMAT must be 'json' or 'text', not {log_format!r}")
    handler = logging.StreamHandler()
    handler.addFilter(ContextFilter())
    json_lines = bool(log_format) and str(log_format).lower() == "json"
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    # httpx logs every request (URL included) at INFO: one line per reply edit.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
