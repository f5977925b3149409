"""The language a clip is transcribed in: detected (``auto``) or fixed by a code."""

from __future__ import annotations

AUTO = "auto"

# The ISO 639-1 codes multilingual Whisper models know (faster-whisper's list, kept here
# so that the settings need not import CTranslate2; a test checks the two agree).
WHISPER_LANGUAGES = (
    "af", "am", "ar", "as", "az", "ba", "be", "bg", "bn", "bo", "br", "bs", "ca", "cs", "cy",
    "da", "de", "el", "en", "es", "et", "eu", "fa", "fi", "fo", "fr", "gl", "gu", "ha", "haw",
    "he", "hi", "hr", "ht", "hu", "hy", "id", "is", "it", "ja", "jw", "ka", "kk", "km", "kn",
    "ko", "la", "lb", "ln", "lo", "lt", "lv", "mg", "mi", "mk", "ml", "mn", "mr", "ms", "mt",
    "my", "ne", "nl", "nn", "no", "oc", "pa", "pl", "ps", "pt", "ro", "ru", "sa", "sd", "si",
    "sk", "sl", "sn", "so", "sq", "sr", "su", "sv", "sw", "ta", "te", "tg", "th", "tk", "tl",
    "tr", "tt", "uk", "ur", "uz", "vi", "yi", "yo", "zh", "yue",
)  # fmt: skip


def parse_language(value: str) -> str | None:
    """None for ``auto`` (detect), else the checked code; ValueError naming the fix."""
    code = value.strip().lower()
    if code in ("", AUTO):
        return None
    if code not in WHISPER_LANGUAGES:
        raise ValueError(
            f"unknown language {value!r}: use a two-letter code such as en, es or fr, or {AUTO}"
        )
    return code
