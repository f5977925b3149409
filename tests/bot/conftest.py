"""Fixtures for the bot's tests that need the real Whisper model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.speech.config import SpeechSettings
from bot.speech.service import SpeechToText


@pytest.fixture(scope="session")
def speech_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the bundled Whisper model is joined, once per test session."""
    return tmp_path_factory.mktemp("speech-data")


@pytest.fixture(scope="session")
def speech(speech_data_dir: Path) -> Iterator[SpeechToText]:
    """The real bundled Whisper base; loaded by the first test that transcribes, then kept."""
    service = SpeechToText(SpeechSettings(), speech_data_dir)
    try:
        yield service
    finally:
        service.close()
