"""The pool under failure: crashed workers, poison jobs, a full queue, long conversations."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from inference.client import InferenceClient
from tests.inference.conftest import GREEDY, ask, complete, start_worker, text_of

ROOT = Path(__file__).resolve().parents[2]


def spawn_worker(redis_url: str, name: str) -> subprocess.Popen[bytes]:
    """A worker in a process of its own, so it can be killed like a crashed host."""
    return subprocess.Popen(
        [sys.executable, "-m", "inference.worker", "--slots", "1", "--ctx-per-slot", "1024",
         "--redis-url", redis_url, "--name", name],
        cwd=ROOT,
        env={**os.environ, "BOT_LOG_LEVEL": "WARNING"},
    )  # fmt: skip


@pytest.mark.model
async def test_the_next_turn_evaluates_only_the_new_tokens(worker, client) -> None:
    first = await complete(client, "Tell me about cats.")
    history = [
        *ask("Tell me about cats."),
        {"role": "assistant", "content": text_of(first)},
        {"role": "user", "content": "And dogs?"},
    ]
    second = [chunk async for chunk in client.stream(history, GREEDY)]
    usage = second[-1].usage
    # The whole first turn's prompt is found in the cache; only the rest is evaluated.
    assert usage["cached_prompt_tokens"] >= first[-1].usage["prompt_tokens"]
    assert usage["prompt_tokens"] - usage["cached_prompt_tokens"] < usage["prompt_tokens"] // 2


@pytest.mark.model
async def test_a_killed_worker_s_job_is_finished_by_another_as_one_reply(
    redis_client: aioredis.Redis, redis_url: str, model_path: Path, client: InferenceClient
) -> None:
    question = ask("Tell me a story about a brave mouse.")
    sampling = {**GREEDY, "max_tokens": 80}
    reference = start_worker(redis_url, model_path, slots=1, name="reference")
    try:
        uninterrupted = text_of([chunk async for chunk in client.stream(question, sampling)])
    finally:
        reference.stop()
    doomed = spawn_worker(redis_url, "doomed")
    try:
        while not await client.live_workers():
            assert doomed.poll() is None, "the worker failed to start"
            await asyncio.sleep(0.1)
        stream = client.stream(question, sampling)
        seen = [await anext(stream) for _ in range(5)]
        doomed.send_signal(signal.SIGKILL)
        doomed.wait()
        rescuer = start_worker(redis_url, model_path, slots=1, name="rescuer", claim_idle_ms=1000)
        try:
            rest = [chunk async for chunk in stream]
        finally:
            rescuer.stop()
    finally:
        if doomed.poll() is None:
            doomed.kill()
    reply = seen + rest
    assert [chunk.kind for chunk in reply].count("done") == 1
    assert reply[-1].kind == "done"
    # One reply: what the first worker wrote, continued by the second, not started over.
    before, after = text_of(seen), text_of(rest)
    assert before and after
    assert not after.lstrip().startswith(before.strip()[:12])
    # The greedy continuation starts where the first worker stopped. (It may drift from
    # an uninterrupted run later: the written text is tokenized afresh.)
    assert uninterrupted.startswith(before)
