"""Log lines as JSON or text, carrying the context of their work and no credentials."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator

import pytest

from inference.logs import (
    JOB_ID,
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    configure_logging,
    context_field,
)

TOPIC = context_field("topic")
TELEGRAM_TOKEN = "123456789:AAHk0Zz_abcdefghijklmnopqrstuvwxyz012"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream, handler
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


async def test_context_reaches_every_line_of_the_work_and_its_tasks(captured) -> None:
    logger, stream, _ = captured

    async def step() -> None:
        logger.info("inside a task started by the turn")

    async def turn() -> None:
        TOPIC.set("conversation-7")
        logger.info("turn started")
        JOB_ID.set("job-42")
        await asyncio.create_task(step())

    await asyncio.create_task(turn())
    logger.info("another turn's line")
    first, second, third = lines(stream)
    assert first["topic"] == "conversation-7" and "job_id" not in first
    assert second["topic"] == "conversation-7" and second["job_id"] == "job-42"
    assert second["message"] == "inside a task started by the turn"
    assert {"ts", "level", "logger"} <= set(second)
    assert "topic" not in third and "job_id" not in third


def test_tokens_and_passwords_are_scrubbed(captured) -> None:
    logger, stream, handler = captured
    logger.info("HTTP Request: POST https://api.telegram.org/bot%s/getUpdates", TELEGRAM_TOKEN)
    logger.info("connecting to postgresql://bot:s3cret@postgres:5432/bot")
    try:
        raise ValueError(f"bad token {TELEGRAM_TOKEN}")
    except ValueError:
        logger.exception("failed")
    text = stream.getvalue()
    assert TELEGRAM_TOKEN not in text and "s3cret" not in text
    assert "/bot[redacted]/getUpdates" in text and "postgresql://[redacted]@postgres" in text
    handler.setFormatter(TextFormatter())
    logger.info("plain %s", TELEGRAM_TOKEN)
    assert stream.getvalue().splitlines()[-1].endswith("plain [redacted]")


def test_configure_logging_checks_the_format() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    try:
        configure_logging("INFO", "json")
        assert isinstance(root.handlers[0].formatter, JsonFormatter)
        assert logging.getLogger("httpx").level == logging.WARNING
        configure_logging("WARNING", "text")
        assert isinstance(root.handlers[0].formatter, TextFormatter)
        with pytest.raises(ValueError, match="BOT_LOG_FORMAT"):
            configure_logging("INFO", "yaml")
    finally:
        root.handlers[:], _ = saved[0], None
        root.setLevel(saved[1])
