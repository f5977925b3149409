"""The language a clip is transcribed in: detected (``auto``) or fixed by a code."""

from __future__ import annotations

AUTO = "auto"


def whisper_languages() -> tuple[str, ...]:
    """The ISO 639-1 codes multilingual Whisper models know."""
    # faster-whisper imports CTranslate2 and PyAV: only when a language is named.
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    return tuple(_LANGUAGE_CODES)


def parse_language(value: str) -> str | None:
    """None for ``auto`` (detect), else the checked code; ValueError naming the fix."""
    code = value.strip().lower()
    if code in ("", AUTO):
        return None
    if code not in whisper_languages():
        raise ValueError(
            f"unknown language {value!r}: use a two-letter code such as en, es or fr, or {AUTO}"
        )
    return code
