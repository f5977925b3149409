"""The pool's throughput with the worker of two source trees, in one interleaved run:
to check that a change to the worker (such as its split into `inference/worker/`)
costs nothing. Each tree's `python -m inference.worker --slots C` serves its own Redis;
C conversations ask at once through `InferenceClient`; rounds alternate between the
trees, so other load on the machine falls on both alike.

    git worktree add /tmp/before <commit>
    python benchmarks/worker_split.py --before /tmp/before [--concurrency 8] [--rounds 6]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.pool_throughput import (  # noqa: E402
    CTX_PER_SLOT,
    Round,
    paired_range,
    run_round,
    summarize,
)
from inference.client import InferenceClient  # noqa: E402
from inference.model_files import resolve_model_path  # noqa: E402
from storage.embedded_redis import EmbeddedRedis  # noqa: E402
from storage.redis_conn import open_redis  # noqa: E402


def start_worker(
    tree: Path, redis_url: str, model: Path, concurrency: int
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable, "-m", "inference.worker", "--model", str(model),
            "--slots", str(concurrency), "--ctx-per-slot", str(CTX_PER_SLOT),
            "--threads", str(os.cpu_count() or 2), "--redis-url", redis_url,
        ],
        cwd=tree,
        env={**os.environ, "BOT_LOG_LEVEL": "WARNING", "PYTHONPATH": str(tree)},
    )  # fmt: skip


async def measure_trees(
    trees: dict[str, Path], model: Path, concurrency: int, rounds: int, max_tokens: int
) -> dict[str, list[Round]]:
    results: dict[str, list[Round]] = {name: [] for name in trees}
    with tempfile.TemporaryDirectory(prefix="bench-split-") as scratch:
        servers = {name: EmbeddedRedis(Path(scratch) / name) for name in trees}
        workers: list[subprocess.Popen[bytes]] = []
        clients: dict[str, InferenceClient] = {}
        try:
            for name, tree in trees.items():
                servers[name].start()
                workers.append(start_worker(tree, servers[name].url, model, concurrency))
                clients[name] = InferenceClient(await open_redis(servers[name].url))
                while not await clients[name].live_workers():
                    if workers[-1].poll() is not None:
                        raise SystemExit(f"the worker of {tree} failed to start")
                    await asyncio.sleep(0.1)

            def request_for(client: InferenceClient):  # type: ignore[no-untyped-def]
                async def request(prompt: str, started: float) -> tuple[int, float]:
                    first, tokens = float("nan"), 0
                    messages = [{"role": "user", "content": prompt}]
                    sampling = {"temperature": 0.0, "max_tokens": max_tokens, "repeat_penalty": 1.0}
                    async for chunk in client.stream(messages, sampling):
                        if chunk.kind == "delta" and first != first:
                            first = time.perf_counter() - started
                        if chunk.kind == "done":
                            tokens = chunk.usage.get("completion_tokens", 0)
                    return tokens, first

                return request

            names = list(trees)
            for name in names:  # warm-up
                await run_round(concurrency, request_for(clients[name]))
            for number in range(rounds):
                order = names if number % 2 == 0 else names[::-1]
                for name in order:
                    results[name].append(await run_round(concurrency, request_for(clients[name])))
        finally:
            for worker in workers:
                worker.terminate()
                worker.wait(timeout=60)
            for server in servers.values():
                server.stop()
    return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="the earlier source tree")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--max-tokens", type=int, default=96)
    args = parser.parse_args()
    model = resolve_model_path(None)
    trees = {"before": args.before.resolve(), "after": ROOT}
    results = await measure_trees(trees, model, args.concurrency, args.rounds, args.max_tokens)
    print(f"concurrency {args.concurrency}, {args.rounds} rounds, max_tokens {args.max_tokens}")
    print("| worker | tok/s (median) | TTFT p50 s | TTFT p95 s |")
    print("| --- | ---: | ---: | ---: |")
    for name, rounds in results.items():
        tok_s, p50, p95 = summarize(rounds)
        print(f"| {name} | {tok_s:.1f} | {p50:.2f} | {p95:.2f} |")
    after, before = summarize(results["after"])[0], summarize(results["before"])[0]
    spread = paired_range(results["after"], results["before"])
    print(f"after / before tokens/s: {after / before:.2f} (round pairs: {spread})")


if __name__ == "__main__":
    asyncio.run(main())
