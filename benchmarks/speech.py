"""Speech to text with the bundled Whisper base (int8 on the CPU): real-time factor for
clips of several lengths, word error rate on the committed test clips, and the time a
voice note adds before its answer can start.

The long clips are the committed espeak-ng sentences one after another with short
pauses, so every window holds speech. Real-time factor = seconds of audio per second of
work (higher is faster); medians of --runs runs after one warm-up.

    python benchmarks/speech.py [--lengths 5 30 120] [--runs 3] [--threads 0]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.speech.config import SpeechSettings  # noqa: E402
from bot.speech.service import SpeechToText  # noqa: E402
from tests.bot.speech.samples import (  # noqa: E402
    decoded,
    speech_of_length,
    spoken_clips,
    wav_bytes,
    words,
)


def word_errors(said: list[str], heard: list[str]) -> int:
    """Substitutions, insertions and deletions between two word lists (Levenshtein)."""
    previous = list(range(len(heard) + 1))
    for index, word in enumerate(said, 1):
        current = [index]
        for column, other in enumerate(heard, 1):
            current.append(
                min(
                    previous[column] + 1,
                    current[column - 1] + 1,
                    previous[column - 1] + (word != other),
                )
            )
        previous = current
    return previous[-1]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[5, 30, 120])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: CTranslate2's)")
    args = parser.parse_args()
    clips = spoken_clips()
    sentences = [decoded(clips[name]) for name in ("en_fox", "en_question", "es_question")]
    print(
        f"{platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f} at the start\n"
    )
    with tempfile.TemporaryDirectory(prefix="bench-speech-") as scratch:
        settings = SpeechSettings(cpu_threads=args.threads)
        async with SpeechToText(settings, Path(scratch)) as speech:
            started = time.perf_counter()
            await speech.transcribe(clips["en_question"].data)
            cold = time.perf_counter() - started
            print("| clip (s) | work p50 (s) | real-time factor p50 | runs |")
            print("| --- | --- | --- | --- |")
            for seconds in args.lengths:
                audio = wav_bytes(speech_of_length(seconds, sentences))
                works = []
                for _ in range(args.runs):
                    heard = await speech.transcribe(audio)
                    works.append(heard.work_seconds)
                work = statistics.median(works)
                print(f"| {seconds} | {work:.2f} | {seconds / work:.1f} | {args.runs} |")
            print("\n| clip | language said / heard | words | errors | WER | heard |")
            print("| --- | --- | --- | --- | --- | --- |")
            total_words = total_errors = 0
            warm = []
            for clip in clips.values():
                heard = await speech.transcribe(clip.data)
                warm.append(heard.work_seconds)
                said = words(clip.text)
                errors = word_errors(said, words(heard.text))
                total_words += len(said)
                total_errors += errors
                print(
                    f"| {clip.path.name} | {clip.language} / {heard.language} | {len(said)} | "
                    f"{errors} | {errors / len(said):.0%} | {heard.text} |"
                )
            print(
                f"| all | | {total_words} | {total_errors} | {total_errors / total_words:.0%} | |"
            )
    print(
        f"\nA 2-6 s voice note adds {statistics.median(warm):.1f} s (median, model loaded) "
        f"before its answer starts; the first clip after start-up {cold:.1f} s "
        "(joining and loading the model included)."
    )


if __name__ == "__main__":
    asyncio.run(main())
