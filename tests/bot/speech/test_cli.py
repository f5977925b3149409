"""`python -m bot transcribe FILE`: what was heard on stdout, one error line otherwise."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.bot.speech.samples import spoken_clips, words


@pytest.mark.model
def test_prints_what_was_heard(
    speech_data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(speech_data_dir))
    assert main(["transcribe", str(spoken_clips()["es_question"].path)]) == 0
    out, err = capsys.readouterr()
    assert {"capital", "francia"} <= set(words(out))
    assert err.startswith("[es, 5.5 s of audio in ")


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "error: The file is empty; record the voice message again.\n"),
        (b"not audio\n" * 50, "error: The file is not audio the bot can read; "),
    ],
)
def test_bad_files_get_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    expected: str,
) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    clip = tmp_path / "voice.ogg"
    clip.write_bytes(content)
    assert main(["transcribe", str(clip)]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith(expected) and err.count("\n") == 1


def test_a_missing_file_and_an_unknown_language(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BOT_DATA_DIR", str(tmp_path))
    assert main(["transcribe", str(tmp_path / "gone.ogg")]) == 1
    assert "error: cannot read" in capsys.readouterr().err
    clip = str(spoken_clips()["en_fox"].path)
    assert main(["transcribe", clip, "--language", "xx"]) == 2
    assert "unknown language 'xx'" in capsys.readouterr().err
