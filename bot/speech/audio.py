"""Decoding a clip into what Whisper reads (16 kHz mono float32), within the limits.

PyAV decodes Ogg/Opus (Telegram's voice notes, Discord's voice messages), MP3, M4A/MP4
(video notes: their sound track), WAV, FLAC and WebM with the FFmpeg libraries its wheels
carry. The duration is checked twice: from the container's header before decoding, so a
two-hour file is refused at once, and while decoding, so a header that lies or says
nothing cannot make the bot decode more than the limit.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
from av.audio.resampler import AudioResampler

from bot.speech.errors import ClipTooLong, ClipUnreadable

log = logging.getLogger(__name__)

SAMPLE_RATE = 16_000
# Shorter than this holds no word worth answering (and tells a truncated file apart).
MIN_SECONDS = 0.3

Samples = npt.NDArray[np.float32]


@dataclass(frozen=True)
class Clip:
    samples: Samples  # 16 kHz mono float32 in [-1, 1]

    @property
    def seconds(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def format_duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min"
    return f"{minutes} min {secs} s" if minutes else f"{secs} s"


def too_long(seconds: float | None, max_seconds: int) -> ClipTooLong:
    """`seconds` None: the clip ran past the limit while decoding, its length unknown."""
    limit = format_duration(max_seconds)
    if seconds is None:
        return ClipTooLong(
            f"The clip is longer than {limit}, the most transcribed here; send a shorter one."
        )
    return ClipTooLong(
        f"The clip is {format_duration(seconds)} long; voice messages of at most {limit} "
        "are transcribed. Send a shorter one."
    )


NOT_AUDIO = "The file is not audio the bot can read; send a voice message or an audio file."
DAMAGED = "The audio file is damaged (its header cannot be read); record or export it again."
# How audio containers start: such a file that cannot be opened is damaged, not foreign.
AUDIO_SIGNATURES = (b"OggS", b"RIFF", b"ID3", b"fLaC", b"\x1aE\xdf\xa3", b"\xff\xfb", b"\xff\xf3")


def decode(data: bytes, max_seconds: int) -> Clip:
    """`data` as 16 kHz mono samples; `ClipUnreadable` or `ClipTooLong` on bad input."""
    if not data:
        raise ClipUnreadable("The file is empty; record the voice message again.")
    try:
        container = av.open(io.BytesIO(data), mode="r", metadata_errors="ignore")
    except (av.FFmpegError, UnicodeDecodeError, ValueError) as exc:
        log.info("unreadable clip: %s", exc)
        raise ClipUnreadable(DAMAGED if _looks_like_audio(data) else NOT_AUDIO) from exc
    with container:
        if not container.streams.audio:
            raise ClipUnreadable("The file holds no sound; send a voice message or an audio file.")
        stream = container.streams.audio[0]
        announced = _announced_seconds(container, stream)
        if announced is not None and announced > max_seconds + 1:
            raise too_long(announced, max_seconds)
        samples = _decode_stream(container, stream, max_seconds)
    if len(samples) < MIN_SECONDS * SAMPLE_RATE:
        raise ClipUnreadable(
            "The clip holds no sound the bot can read (it is too short or damaged); "
            "record it again."
        )
    return Clip(samples)


def _looks_like_audio(data: bytes) -> bool:
    # MP4/M4A (video notes, voice memos) name their type at offset 4.
    return data.startswith(AUDIO_SIGNATURES) or data[4:8] == b"ftyp"


def _announced_seconds(
    container: av.container.InputContainer, stream: av.AudioStream
) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _decode_stream(
    container: av.container.InputContainer, stream: av.AudioStream, max_seconds: int
) -> Samples:
    resampler = AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    limit = (max_seconds + 1) * SAMPLE_RATE
    chunks: list[npt.NDArray[np.generic]] = []
    total = 0
    try:
        for frame in container.decode(stream):
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += len(chunk)
            if total > limit:
                raise too_long(None, max_seconds)
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    except av.FFmpegError as exc:
        # A truncated or damaged file: what decoded before the damage is still speech.
        log.info("clip decoding stopped after %.1f s: %s", total / SAMPLE_RATE, exc)
        if total == 0:
            raise ClipUnreadable(NOT_AUDIO) from exc
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    pcm = np.concatenate(chunks).astype(np.float32)
    pcm /= 32768.0
    return pcm
