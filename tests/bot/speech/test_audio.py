"""Decoding clips within the limits, and one clear line for each kind of bad file."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from bot.speech.audio import SAMPLE_RATE, decode, format_duration
from bot.speech.errors import ClipTooLong, ClipUnreadable
from bot.speech.languages import WHISPER_LANGUAGES, parse_language
from tests.bot.speech.samples import (
    broken_ogg_header,
    flac_silence,
    ogg_announcing,
    spoken_clips,
)

CLIPS = spoken_clips()


@pytest.mark.parametrize("name", sorted(CLIPS))
def test_committed_clips_decode_to_16k_mono(name: str) -> None:
    clip = decode(CLIPS[name].data, max_seconds=60)
    assert clip.samples.dtype == np.float32
    assert 1.5 < clip.seconds < 6
    assert 0.05 < float(np.abs(clip.samples).max()) <= 1.0


def test_a_video_note_gives_its_sound_track() -> None:
    from_video = decode(CLIPS["en_video_note"].data, max_seconds=60)
    from_voice = decode(CLIPS["en_question"].data, max_seconds=60)
    assert abs(from_video.seconds - from_voice.seconds) < 0.3


def test_an_empty_file() -> None:
    with pytest.raises(ClipUnreadable, match="The file is empty"):
        decode(b"", max_seconds=60)


@pytest.mark.parametrize(
    "data",
    [b"this is a text file named voice.ogg\n" * 20, bytes(range(256)) * 40],
    ids=["text", "binary"],
)
def test_a_file_that_is_not_audio(data: bytes) -> None:
    with pytest.raises(ClipUnreadable, match="not audio the bot can read"):
        decode(data, max_seconds=60)


def test_an_ogg_with_a_broken_header() -> None:
    with pytest.raises(ClipUnreadable, match="damaged"):
        decode(broken_ogg_header(CLIPS["en_fox"].data), max_seconds=60)


def test_an_image_sent_as_audio() -> None:
    with pytest.raises(ClipUnreadable, match="holds no sound"):
        decode(b"\x89PNG\r\n\x1a\n" + bytes(500), max_seconds=60)


def test_a_video_without_sound() -> None:
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=2)
        stream.width = stream.height = 32
        stream.pix_fmt = "yuv420p"
        for index in range(4):
            frame = av.VideoFrame.from_ndarray(
                np.zeros((32, 32, 3), dtype=np.uint8), format="rgb24"
            )
            frame.pts = index
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    with pytest.raises(ClipUnreadable, match="holds no sound"):
        decode(buf.getvalue(), max_seconds=60)


def test_a_truncated_clip_keeps_what_decoded() -> None:
    data = CLIPS["es_question"].data
    whole = decode(data, max_seconds=60)
    half = decode(data[: len(data) // 2], max_seconds=60)
    assert 0.3 < half.seconds < whole.seconds


def test_a_clip_cut_to_nothing_is_refused() -> None:
    with pytest.raises(ClipUnreadable):
        decode(CLIPS["en_fox"].data[:300], max_seconds=60)


def test_a_two_hour_file_is_refused_from_its_header() -> None:
    data = flac_silence(2 * 3600)
    assert len(data) < 3 * 1024 * 1024  # small enough to pass a size limit
    with pytest.raises(ClipTooLong, match=r"The clip is 2 h 0 min long; .* at most 5 min 0 s"):
        decode(data, max_seconds=300)


def test_a_header_that_understates_the_length_does_not_get_past_the_limit() -> None:
    lying = ogg_announcing(CLIPS["es_question"].data, seconds=1.0)
    container = av.open(io.BytesIO(lying))
    assert container.duration is not None and container.duration / av.time_base < 1.5
    container.close()
    with pytest.raises(ClipTooLong, match="longer than 2 s"):
        decode(lying, max_seconds=2)
    assert decode(lying, max_seconds=60).seconds > 4


def test_limits_read_as_a_person_says_them() -> None:
    assert format_duration(42.4) == "42 s"
    assert format_duration(300) == "5 min 0 s"
    assert format_duration(7260) == "2 h 1 min"
    assert SAMPLE_RATE == 16_000  # what Whisper reads


def test_the_language_codes_are_whispers() -> None:
    from faster_whisper.tokenizer import _LANGUAGE_CODES

    assert set(WHISPER_LANGUAGES) == set(_LANGUAGE_CODES)
    assert parse_language("ES") == "es"
    assert parse_language("auto") is None
    with pytest.raises(ValueError, match="unknown language 'xx'"):
        parse_language("xx")
