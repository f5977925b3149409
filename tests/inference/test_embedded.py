"""The app's own worker: a child process that comes back when it crashes, and stops when
the app is gone."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from inference.client import InferenceClient
from inference.embedded import EmbeddedWorker
from inference.errors import InferenceError
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


async def test_a_worker_that_cannot_start_tells_the_app_why(
    redis_client: aioredis.Redis, redis_url: str, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-model.gguf"
    embedded = EmbeddedWorker(redis_url, missing, slots=1, ctx_per_slot=256, name="never")
    with pytest.raises(InferenceError, match=r"exited at start-up \(status 2\):.*no-such-model"):
        async with embedded:
            pass
    assert not await redis_client.exists(worker_key("never"))


def test_a_worker_without_redis_exits_with_a_clear_error() -> None:
    command = [sys.executable, "-m", "inference.worker", "--redis-url", "redis://127.0.0.1:9/0"]
    worker = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert worker.returncode == 1
    assert "worker failed to start: the worker cannot reach Redis" in worker.stderr


@pytest.mark.model
def test_a_worker_whose_parent_dies_while_it_starts_lets_go_of_its_pipes(
    redis_url: str, model_path: Path
) -> None:
    # A parent that starts a worker sharing its stdout, says the worker's pid, and is then
    # killed: the pipe reaches end-of-file only once the worker, its last writer, is gone.
    parent_code = (
        "import os, subprocess, sys, time\n"
        "w = subprocess.Popen([sys.executable, '-m', 'inference.worker', '--model', sys.argv[1],"
        " '--slots', '1', '--ctx-per-slot', '256', '--redis-url', sys.argv[2],"
        " '--parent-pid', str(os.getpid())], stderr=subprocess.DEVNULL)\n"
        "print(w.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", parent_code, str(model_path), redis_url],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    worker_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    started = time.monotonic()
    assert parent.stdout.read() == ""  # end of file: no process holds the pipe any more
    assert time.monotonic() - started < 60
    while is_running(worker_pid):  # past end-of-file it is exiting: only moments more
        assert time.monotonic() - started < 60
        time.sleep(0.05)


def is_running(pid: int) -> bool:
    """Whether `pid` lives (an exited process not yet reaped by its new parent does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")
