"""Audio for the speech tests and benchmark: the committed espeak-ng clips with their
text, and sounds made here (silence, noise, music, a two-hour file, damaged files)."""

from __future__ import annotations

import csv
import io
import struct
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

CLIPS_DIR = Path(__file__).parent / "clips"
RATE = 16_000

Samples = npt.NDArray[np.float64]


@dataclass(frozen=True)
class SpokenClip:
    path: Path
    language: str
    text: str  # what espeak-ng was told to say

    @property
    def data(self) -> bytes:
        return self.path.read_bytes()


def spoken_clips() -> dict[str, SpokenClip]:
    with (CLIPS_DIR / "clips.tsv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t"))
    return {
        row["file"].rsplit(".", 1)[0]: SpokenClip(
            CLIPS_DIR / row["file"], row["language"], row["text"]
        )
        for row in rows
    }


def wav_bytes(samples: Samples, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return buf.getvalue()


def silence(seconds: float) -> Samples:
    return np.zeros(int(seconds * RATE))


def noise(seconds: float, level: float = 0.05) -> Samples:
    return level * np.random.default_rng(7).standard_normal(int(seconds * RATE))


def music(seconds: float) -> Samples:
    """Plucked chords with harmonics: tonal, rhythmic, and no word in it."""
    t = np.arange(int(seconds * RATE)) / RATE
    out = np.zeros_like(t)
    chords = (
        (261.6, 329.6, 392.0),
        (220.0, 261.6, 329.6),
        (174.6, 220.0, 261.6),
        (196.0, 246.9, 293.7),
    )
    beat = len(t) // 8
    for index in range(8):
        part = slice(index * beat, (index + 1) * beat)
        for root in chords[index % 4]:
            for harmonic, level in ((1, 1.0), (2, 0.5), (3, 0.25)):
                out[part] += level * np.sin(2 * np.pi * root * harmonic * t[part])
        out[part] *= np.exp(-3 * np.linspace(0, 1, beat))
    return 0.2 * out / np.abs(out).max()


def decoded(clip: SpokenClip) -> Samples:
    """The clip's sound at 16 kHz mono, to build longer clips from."""
    from bot.speech.audio import decode

    return decode(clip.data, max_seconds=600).samples.astype(np.float64)


def speech_of_length(seconds: float, parts: list[Samples], gap_s: float = 0.4) -> Samples:
    """`parts` one after another, with short pauses, repeated to `seconds`."""
    gap = silence(gap_s)
    out: list[Samples] = []
    total = 0
    while total < seconds * RATE:
        for part in parts:
            out += [part, gap]
            total += len(part) + len(gap)
    return np.concatenate(out)[: int(seconds * RATE)]


def flac_silence(seconds: int, rate: int = 8000) -> bytes:
    """A real FLAC file of `seconds` of silence: hours of audio in about a megabyte."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        block = np.zeros((1, rate * 10), dtype=np.int16)
        for index in range(seconds // 10):
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout="mono")
            frame.sample_rate = rate
            frame.pts = index * rate * 10
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def broken_ogg_header(data: bytes) -> bytes:
    """The Ogg file with its first page (the Opus header) overwritten: still says OggS."""
    damaged = bytearray(data)
    damaged[28:60] = bytes(32)
    return bytes(damaged)


def ogg_announcing(data: bytes, seconds: float) -> bytes:
    """The Ogg/Opus file with its last page claiming the stream ends after `seconds`, so
    its header understates its length (the checksum is fixed, so it still parses)."""
    damaged = bytearray(data)
    last = damaged.rfind(b"OggS")
    damaged[last + 6 : last + 14] = struct.pack("<q", int(seconds * 48_000) + 312)
    damaged[last + 22 : last + 26] = bytes(4)
    damaged[last + 22 : last + 26] = struct.pack("<I", _ogg_crc(bytes(damaged[last:])))
    return bytes(damaged)


def _ogg_crc(page: bytes) -> int:
    crc = 0
    for byte in page:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def words(text: str) -> list[str]:
    """Lower-case words without punctuation, to compare what was said with what was heard."""
    cleaned = "".join(char if char.isalnum() else " " for char in text.lower())
    return cleaned.split()
