"""The app's own worker: a child process that comes back when it crashes, and stops when
the app is gone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from inference.client import InferenceClient
from inference.embedded import EmbeddedWorker
from inference.protocol import worker_key
from tests.inference.conftest import GREEDY, ask, text_of


@pytest.mark.model
async def test_a_crashed_worker_restarts_and_finishes_the_answer(
    redis_client: aioredis.Redis, redis_url: str, model_path: Path, client: InferenceClient
) -> None:
    async with EmbeddedWorker(
        redis_url, model_path, slots=1, ctx_per_slot=512, name="embedded"
    ) as embedded:
        assert embedded.process is not None
        crashed = embedded.process
        sampling = {**GREEDY, "max_tokens": 160}
        chunks = []
        async for chunk in client.stream(ask("Tell me a long story about a fox."), sampling):
            chunks.append(chunk)
            if len(chunks) == 3:
                crashed.kill()  # as an abort inside llama.cpp would
                before = text_of(chunks)
        assert crashed.returncode is not None
        assert embedded.restarts == 1 and embedded.process is not crashed
        # One answer, continued where the dead worker stopped, not started over.
        assert [chunk.kind for chunk in chunks].count("done") == 1
        answer = text_of(chunks)
        assert answer.startswith(before) and len(answer) > len(before)
        assert not answer[len(before) :].lstrip().startswith(before.strip())
    assert not await redis_client.exists(worker_key("embedded"))  # stopped with the app


@pytest.mark.model
def test_a_worker_whose_parent_is_gone_stops(redis_url: str, model_path: Path) -> None:
    # Its parent is this test, not process 1: as if the app had died and left it behind.
    command = [
        sys.executable, "-m", "inference.worker", "--model", str(model_path), "--slots", "1",
        "--ctx-per-slot", "256", "--redis-url", redis_url, "--parent-pid", "1",
    ]  # fmt: skip
    worker = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    _, errors = worker.communicate(timeout=120)
    assert worker.returncode == 0
    assert "its parent process is gone" in errors
