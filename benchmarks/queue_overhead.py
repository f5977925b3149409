"""Latency the Redis queue adds to a job: submit to first chunk, minus the worker's own
time from taking the job to writing its first chunk (which the worker reports in the
final chunk's usage as `first_output_ms`). One job at a time on an idle worker, so the
figure is the queue and transport cost alone: the client's checks and XADD, the
worker's wake-up, its XADD of the chunk and the client's read.

    python benchmarks/queue_overhead.py [--jobs 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.client import InferenceClient  # noqa: E402
from inference.embedded import EmbeddedWorker  # noqa: E402
from inference.model_files import resolve_model_path  # noqa: E402
from storage.embedded_redis import EmbeddedRedis  # noqa: E402
from storage.redis_conn import open_redis  # noqa: E402


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=50)
    args = parser.parse_args()
    model = resolve_model_path(None)
    overheads, totals = [], []
    with tempfile.TemporaryDirectory(prefix="bench-queue-") as scratch:
        async with EmbeddedRedis(Path(scratch) / "redis") as server:
            redis = await open_redis(server.url)
            client = InferenceClient(redis)
            async with EmbeddedWorker(server.url, model, slots=1, ctx_per_slot=1024):
                for index in range(args.jobs + 3):  # the first three warm up
                    messages = [{"role": "user", "content": f"Say hi ({index})."}]
                    started = time.perf_counter()
                    first = None
                    async for chunk in client.stream(messages, {"temperature": 0, "max_tokens": 4}):
                        if first is None:
                            first = time.perf_counter() - started
                        if chunk.kind == "done" and index >= 3 and first is not None:
                            worker_ms = chunk.usage["first_output_ms"]
                            totals.append(first * 1000)
                            overheads.append(first * 1000 - worker_ms)
            await client.close()
            await redis.aclose()
    overheads.sort()
    p95 = overheads[min(len(overheads) - 1, round(0.95 * (len(overheads) - 1)))]
    print(f"{args.jobs} jobs, one at a time, embedded Redis on a Unix socket\n")
    print("| submit to first chunk p50 (ms) | queue overhead p50 (ms) | overhead p95 (ms) |")
    print("| --- | --- | --- |")
    print(f"| {statistics.median(totals):.2f} | {statistics.median(overheads):.2f} | {p95:.2f} |")


if __name__ == "__main__":
    asyncio.run(main())
