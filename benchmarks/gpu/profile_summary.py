"""Where the benchmark's Python processes spent their time, from py-spy's raw output.

`gpu_bench.py run` records the measurement with `py-spy record --subprocesses
--nonblocking --format raw` (sampling without stopping the processes) when the carried
py-spy is there. Each line of that output is one stack, `frame;frame;... count`, that
starts with process frames: the process's parents, then its own. This prints, per
process, the functions the samples ended in (self time) and the share of the process's
samples under a few functions that say where a step goes (inclusive time).

    python benchmarks/gpu/profile_summary.py profile.txt [--top 12]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

# Inclusive shares worth a line: the engine's decode call, sampling, Redis, the loop.
MARKERS = ("llama_decode", "decode", "sample", "redis", "step", "select", "json")
_LINE = re.compile(r"^(?P<stack>.*) (?P<count>\d+)$")
_FRAME = re.compile(r"^(?P<function>[^ ]+) \((?P<file>[^:]+)(?::\d+)?\)$")


def process_label(frame: str) -> str:
    for marker in ("inference.worker", "measure.py", "prefix_reuse"):
        if marker in frame:
            return marker
    return frame[:60]


def short(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{match['function']} ({Path(match['file']).name})"


def summarize(text: str, top: int) -> list[str]:
    leaves: dict[str, Counter[str]] = defaultdict(Counter)
    inclusive: dict[str, Counter[str]] = defaultdict(Counter)
    totals: Counter[str] = Counter()
    for line in text.splitlines():
        match = _LINE.match(line)
        if not match:
            continue
        frames = match["stack"].split(";")
        count = int(match["count"])
        processes = [n for n, frame in enumerate(frames) if frame.startswith("process ")]
        if not processes or processes[-1] == len(frames) - 1:
            continue
        label = process_label(frames[processes[-1]])
        frames = frames[processes[-1] + 1 :]
        totals[label] += count
        leaves[label][short(frames[-1])] += count
        seen = {short(frame) for frame in frames}
        for name in seen:
            if any(marker in name.lower() for marker in MARKERS):
                inclusive[label][name] += count
    lines = []
    for label, total in totals.most_common():
        lines.append(f"{label}: {total} samples")
        lines.append("  self time:")
        for name, count in leaves[label].most_common(top):
            lines.append(f"    {100 * count / total:5.1f}%  {name}")
        lines.append("  inclusive (decode, sampling, Redis, the loop):")
        for name, count in inclusive[label].most_common(top):
            lines.append(f"    {100 * count / total:5.1f}%  {name}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args()
    print("\n".join(summarize(args.profile.read_text(errors="replace"), args.top)))


if __name__ == "__main__":
    main()
