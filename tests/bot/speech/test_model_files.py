"""Finding the Whisper model: the bundled one joined once into the data folder, or a
configured folder checked with a message that names the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.speech.config import SpeechSettings
from bot.speech.errors import SpeechUnavailable
from bot.speech.model_files import bundled_model_dir, bundled_parts, resolve_model_dir
from bot.speech.service import SpeechToText
from tests.bot.speech.samples import spoken_clips


def test_the_bundled_model_is_joined_once(tmp_path: Path) -> None:
    parts, others = bundled_parts()
    assert [part.name for part in parts] == ["model.bin.part1", "model.bin.part2"]
    assert {"config.json", "tokenizer.json", "vocabulary.txt"} <= {other.name for other in others}
    folder = bundled_model_dir(tmp_path)
    joined = folder / "model.bin"
    assert joined.stat().st_size == sum(part.stat().st_size for part in parts)
    with joined.open("rb") as handle, parts[0].open("rb") as first:
        assert handle.read(1 << 16) == first.read(1 << 16)
    before = joined.stat()
    assert bundled_model_dir(tmp_path) == folder
    after = joined.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert not [name for name in folder.iterdir() if name.name.startswith(".model-")]


def test_a_half_joined_model_is_joined_again(tmp_path: Path) -> None:
    folder = bundled_model_dir(tmp_path)
    size = (folder / "model.bin").stat().st_size
    with (folder / "model.bin").open("r+b") as handle:
        handle.truncate(size // 3)
    assert resolve_model_dir(None, tmp_path) == folder
    assert (folder / "model.bin").stat().st_size == size


def test_a_configured_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(SpeechUnavailable, match="does not exist; fix BOT_SPEECH_MODEL_DIR"):
        resolve_model_dir(tmp_path / "nowhere", tmp_path)


def test_a_configured_folder_without_a_model(tmp_path: Path) -> None:
    (tmp_path / "model.bin").write_bytes(b"x")
    with pytest.raises(SpeechUnavailable, match=r"lacks config\.json, tokenizer\.json"):
        resolve_model_dir(tmp_path, tmp_path)


async def test_a_configured_folder_whose_model_does_not_load(tmp_path: Path) -> None:
    folder = tmp_path / "broken-model"
    folder.mkdir()
    for name in ("model.bin", "config.json", "tokenizer.json"):
        (folder / name).write_bytes(b"not a model")
    async with SpeechToText(SpeechSettings(model_dir=folder), tmp_path) as speech:
        with pytest.raises(SpeechUnavailable, match=r"cannot be loaded .* BOT_SPEECH_MODEL_DIR"):
            await speech.transcribe(spoken_clips()["en_question"].data)
        assert not speech.model_loaded
