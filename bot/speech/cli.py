"""`python -m bot transcribe FILE`: print what is said in an audio file, with the same
model, limits and messages as voice messages in a chat."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.speech.config import SpeechSettings
from bot.speech.errors import SpeechError
from bot.speech.languages import AUTO, parse_language
from bot.speech.service import SpeechToText


def add_transcribe_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "transcribe", help="print what is said in an audio file (voice note, MP3, WAV, ...)"
    )
    parser.add_argument("file", type=Path, metavar="FILE")
    parser.add_argument(
        "--language", default=AUTO, help=f"two-letter language code, or {AUTO} (default)"
    )


async def run_transcribe(settings: SpeechSettings, data_dir: Path, args: argparse.Namespace) -> int:
    try:
        language = parse_language(args.language)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path: Path = args.file
    async with SpeechToText(settings, data_dir) as speech:
        try:
            speech.check_size((await asyncio.to_thread(path.stat)).st_size)
            data = await asyncio.to_thread(path.read_bytes)
            heard = await speech.transcribe(data, language)
        except OSError as exc:
            print(f"error: cannot read {path}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        except SpeechError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(heard.text)
    print(
        f"[{heard.language}, {heard.audio_seconds:.1f} s of audio in {heard.work_seconds:.1f} s]",
        file=sys.stderr,
    )
    return 0
