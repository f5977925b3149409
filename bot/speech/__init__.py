"""Speech to text on this host (Whisper through faster-whisper), for every platform."""

from bot.speech.config import SpeechSettings
from bot.speech.errors import (
    ClipTooLarge,
    ClipTooLong,
    ClipUnreadable,
    NoSpeechFound,
    SpeechBusy,
    SpeechError,
    SpeechUnavailable,
)
from bot.speech.service import SpeechToText, Transcript

__all__ = [
    "ClipTooLarge",
    "ClipTooLong",
    "ClipUnreadable",
    "NoSpeechFound",
    "SpeechBusy",
    "SpeechError",
    "SpeechSettings",
    "SpeechToText",
    "SpeechUnavailable",
    "Transcript",
]
