"""Translating Telegram's answers into the delivery layer's terms, and reading settings."""

from __future__ import annotations

import pytest
from telegram.error import BadRequest, ChatMigrated, Forbidden, NetworkError, RetryAfter, TimedOut

from bot.delivery.transport import (
    DeliveryError,
    DestinationGone,
    FormattingRejected,
    MessageGone,
    RetryLater,
)
from bot.platforms.telegram.config import PUBLIC_DOWNLOAD_LIMIT_BYTES, TelegramSettings
from bot.platforms.telegram.transport import render, translate, utf16_length


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (BadRequest("Can't parse entities: unsupported start tag"), FormattingRejected),
        (BadRequest("Message to edit not found"), MessageGone),
        (BadRequest("Chat not found"), DestinationGone),
        (BadRequest("Not enough rights to send text messages to the chat"), DestinationGone),
        (Forbidden("Forbidden: bot was kicked from the group chat"), DestinationGone),
        (ChatMigrated(-100123), DestinationGone),
        (TimedOut(), RetryLater),
        (NetworkError("Bad Gateway"), RetryLater),
        (BadRequest("Message is too long"), DeliveryError),
    ],
)
def test_errors_translate(error: Exception, expected: type[DeliveryError]) -> None:
    translated = translate(error)  # type: ignore[arg-type]
    assert type(translated) is expected


def test_retry_after_carries_the_wait() -> None:
    translated = translate(RetryAfter(7))
    assert isinstance(translated, RetryLater)
    assert translated.retry_after_s == 7.0


def test_markdown_becomes_text_and_entities_measured_in_utf16() -> None:
    text, entities = render("😀 **bold**")
    assert text == "😀 bold"
    assert [(e.type, e.offset, e.length) for e in entities] == [("bold", 3, 4)]
    assert utf16_length(text) == 7


def test_settings_read_operators_and_treat_empty_values_as_unset(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BOT_TELEGRAM_OPERATORS", "12, 34")
    monkeypatch.setenv("BOT_TELEGRAM_WEBHOOK_URL", "")
    monkeypatch.setenv("BOT_TELEGRAM_BASE_URL", "")
    settings = TelegramSettings(_env_file=None)  # type: ignore[call-arg]
    assert settings.operators == [12, 34]
    assert settings.webhook_url is None
    assert settings.download_limit_bytes == PUBLIC_DOWNLOAD_LIMIT_BYTES


def test_a_self_hosted_bot_api_has_no_download_limit() -> None:
    settings = TelegramSettings(base_url="http://bot-api:8081/bot")
    assert settings.download_limit_bytes is None
