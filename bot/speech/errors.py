"""What the person sees when a clip cannot be transcribed: one line each, saying what
happened and what to do.

SpeechError               base class (a `BotError`: the chat path shows `str(exc)`)
├── ClipTooLarge          the file is over the size limit (refused before download)
├── ClipTooLong           the clip is over the duration limit
├── ClipUnreadable        empty, not audio, or a broken container
├── NoSpeechFound         silence, music or noise: nothing to answer
├── SpeechBusy            too many clips are waiting; try again shortly
└── SpeechUnavailable     voice is off, or the model cannot be loaded
"""

from __future__ import annotations

from bot.errors import BotError


class SpeechError(BotError):
    pass


class ClipTooLarge(SpeechError):
    pass


class ClipTooLong(SpeechError):
    pass


class ClipUnreadable(SpeechError):
    pass


class NoSpeechFound(SpeechError):
    pass


class SpeechBusy(SpeechError):
    pass


class SpeechUnavailable(SpeechError):
    pass
