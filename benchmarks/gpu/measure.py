"""The measurement `gpu_bench.py run` makes once everything is built: the pool, llama-server
and the batching engine alone at each concurrency (benchmarks/pool_throughput.py, their
rounds interleaved), then prefix reuse at turn 10 (benchmarks/prefix_reuse.py), printed
as one table with the ratios and the targets. Every round must generate exactly
max_tokens per conversation (the random-weight model never ends early); a round that
did not is reported, since tokens/s would then compare different work.

    python benchmarks/gpu/measure.py --model M [--gpu-layers -1] [--concurrency 8 32 64]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # benchmarks/
sys.path.insert(0, str(HERE.parent.parent))

import pool_throughput  # noqa: E402
import prefix_reuse  # noqa: E402
from pool_throughput import Round, llama_server_binary, paired_range, summarize  # noqa: E402

from storage.embedded_redis import EmbeddedRedis  # noqa: E402

TARGET_THROUGHPUT = 1.1  # pool / llama-server at 32 and 64 concurrent
TARGET_PREFIX = 0.1  # turn 10 with reuse / without


@dataclass
class Level:
    concurrency: int
    results: dict[str, list[Round]]
    seconds: float


def short_rounds(rounds: list[Round], concurrency: int, max_tokens: int) -> int:
    return sum(1 for r in rounds if r.tokens != concurrency * max_tokens)


def machine() -> str:
    parts = [f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"]
    if shutil.which("nvidia-smi"):
        query = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
                 "--format=csv,noheader"]  # fmt: skip
        gpu = subprocess.run(query, capture_output=True, text=True, check=False).stdout.strip()
        parts.append(gpu or "nvidia-smi answered nothing")
    return "; ".join(parts)


def versions() -> str:
    # llama-server --version names a git commit, but the carried sources have no history
    # of their own: the llama.cpp is the one llama-cpp-python vendors.
    python_binding = importlib.metadata.version("llama-cpp-python")
    return (
        f"llama-cpp-python {python_binding} and llama-server {llama_server_binary()}, "
        "both from the llama.cpp it vendors, in one CMake build"
    )


def throughput_table(levels: list[Level], max_tokens: int) -> list[str]:
    lines = [
        "| concurrent | pool tok/s | llama-server tok/s | pool / server (per round) "
        "| engine alone tok/s (/ server) | TTFT p50 pool / server (s) "
        "| TTFT p95 pool / server (s) | rounds short of max_tokens | level (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for level in levels:
        pool, server = summarize(level.results["pool"]), summarize(level.results["server"])
        engine = summarize(level.results["engine"]) if "engine" in level.results else None
        engine_cell = f"{engine[0]:.1f} ({engine[0] / server[0]:.2f}x)" if engine else "-"
        spread = paired_range(level.results["pool"], level.results["server"])
        short = ", ".join(
            f"{name} {short_rounds(rounds, level.concurrency, max_tokens)}"
            for name, rounds in level.results.items()
        )
        lines.append(
            f"| {level.concurrency} | {pool[0]:.1f} | {server[0]:.1f} "
            f"| {pool[0] / server[0]:.2f}x ({spread}) | {engine_cell} "
            f"| {pool[1]:.3f} / {server[1]:.3f} | {pool[2]:.3f} / {server[2]:.3f} "
            f"| {short} | {level.seconds:.0f} |"
        )
    return lines


def verdicts(levels: list[Level], prefix: prefix_reuse.PrefixTimes, max_tokens: int) -> list[str]:
    lines = []
    for level in levels:
        pool, server = summarize(level.results["pool"]), summarize(level.results["server"])
        ratio = pool[0] / server[0]
        if level.concurrency >= 32:
            met = "met" if ratio >= TARGET_THROUGHPUT else "NOT met"
            lines.append(f"- {level.concurrency} concurrent: pool / llama-server {ratio:.2f}x "
                         f"(target {TARGET_THROUGHPUT}x): {met}")  # fmt: skip
        met = "met" if pool[2] <= server[2] else "NOT met"
        lines.append(f"- {level.concurrency} concurrent: TTFT p95 {pool[2]:.3f} s vs "
                     f"llama-server {server[2]:.3f} s (target: no worse): {met}")  # fmt: skip
        short = sum(short_rounds(r, level.concurrency, max_tokens) for r in level.results.values())
        if short:
            lines.append(
                f"- {level.concurrency} concurrent: {short} round(s) generated fewer than "
                "max_tokens per conversation: tokens/s compare unequal work"
            )
    ratio = prefix.warm / prefix.cold
    met = "met" if ratio <= TARGET_PREFIX else "NOT met"
    lines.append(f"- prefix reuse at turn 10: {ratio:.3f}x a full prefill "
                 f"(target at most {TARGET_PREFIX}x): {met}")  # fmt: skip
    return lines


async def measure_levels(args: argparse.Namespace, redis_url: str) -> list[Level]:
    levels = []
    for concurrency in args.concurrency:
        started = time.perf_counter()
        results = await pool_throughput.measure(
            redis_url, args.model, concurrency, args.rounds, args.max_tokens, args.threads,
            args.gpu_layers, args.contenders,
        )  # fmt: skip
        levels.append(Level(concurrency, results, time.perf_counter() - started))
        # Each level's row as soon as it is measured: a run cut short keeps what it had.
        print(throughput_table(levels[-1:], args.max_tokens)[-1], file=sys.stderr, flush=True)
    return levels


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--gpu-layers", type=int, default=0, help="-1: all")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--prefix-runs", type=int, default=5)
    parser.add_argument("--contenders", nargs="+", default=["pool", "server", "engine"],
                        choices=pool_throughput.CONTENDERS)  # fmt: skip
    parser.add_argument("--setup", default="{}", help="JSON: what gpu_bench.py did before")
    parser.add_argument("--out", type=Path, default=None, help="also write the report here")
    args = parser.parse_args()
    if not {"pool", "server"} <= set(args.contenders):
        parser.error("--contenders needs at least pool and server")
    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as scratch:
        async with EmbeddedRedis(Path(scratch) / "redis") as redis_server:
            levels = await measure_levels(args, redis_server.url)
    started = time.perf_counter()
    prefix = prefix_reuse.measure(args.model, args.prefix_runs, args.gpu_layers, args.threads)
    prefix_s = time.perf_counter() - started
    setup = json.loads(args.setup)
    report = [
        f"machine: {machine()}",
        f"versions: {versions()}",
        f"model: {args.model.name} (random weights, the bundled model's shape); greedy; "
        f"max_tokens {args.max_tokens}; {args.threads} CPU threads; gpu layers "
        f"{args.gpu_layers}; medians of {args.rounds} interleaved rounds; setup {setup}",
        "",
        *throughput_table(levels, args.max_tokens),
        "",
        "| prefix reuse at turn 10 | time to first token (s) | ratio |",
        "| --- | --- | --- |",
        f"| without ({prefix.prompt_tokens} prompt tokens) | {prefix.cold:.4f} | 1.00 |",
        f"| with | {prefix.warm:.4f} | {prefix.warm / prefix.cold:.3f} |",
        f"| restored from host RAM | {prefix.restored:.4f} | {prefix.restored / prefix.cold:.3f} |",
        f"(prefix reuse: medians of {args.prefix_runs} runs, {prefix_s:.0f} s)",
        "",
        "Targets:",
        *verdicts(levels, prefix, args.max_tokens),
    ]
    text = "\n".join(report)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    asyncio.run(main())
