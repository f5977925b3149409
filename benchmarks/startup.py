"""Time from `python -m bot chat` to the first streamed token, on fresh and warm data dirs.

Each run starts the CLI with piped input and reads its stdout until the first character
of the answer arrives (after the "bot> " prefix). "fresh" uses a new data directory
(initdb, new Redis files); "warm" reuses one that a previous run created. Prints a
Markdown table of medians.

    python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PREFIX = b"bot> "


def time_to_first_token(data_dir: Path) -> tuple[float, float]:
    """Seconds to the first answer character, and to the process's exit."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BOT_")}
    env.update({"BOT_DATA_DIR": str(data_dir), "BOT_DEFAULT_MAX_TOKENS": "16"})
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "chat"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert process.stdin and process.stdout
    process.stdin.write(b"Say hello.\n")
    process.stdin.close()
    seen = b""
    first_token = float("nan")
    while True:
        byte = process.stdout.read(1)
        if not byte:
            break
        seen += byte
        if len(seen) > len(PREFIX) and seen.startswith(PREFIX):
            first_token = time.perf_counter() - started
            break
    process.stdout.read()
    if process.wait(timeout=300) != 0:
        raise SystemExit(f"the bot failed (exit {process.returncode}); output: {seen!r}")
    return first_token, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    fresh: list[tuple[float, float]] = []
    warm: list[tuple[float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        warm_dir = Path(scratch) / "warm"
        time_to_first_token(warm_dir)  # create it once
        for index in range(args.runs):
            fresh.append(time_to_first_token(Path(scratch) / f"fresh-{index}"))
            warm.append(time_to_first_token(warm_dir))
    python = platform.python_version()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python {python}")
    print(f"runs: {args.runs} each (medians; min-max in brackets)\n")
    print("| data dir | first token (s) | process exit (s) |")
    print("| --- | --- | --- |")
    for name, samples in (("fresh", fresh), ("warm", warm)):
        first = [sample[0] for sample in samples]
        total = [sample[1] for sample in samples]
        print(
            f"| {name} | {statistics.median(first):.2f} [{min(first):.2f}-{max(first):.2f}] "
            f"| {statistics.median(total):.2f} [{min(total):.2f}-{max(total):.2f}] |"
        )


if __name__ == "__main__":
    main()
