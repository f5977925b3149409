"""Fixtures for the pool tests: workers on the test Redis, running the real SmolLM2 model
or a scripted runner (where generation is not what is tested)."""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from inference.client import InferenceClient
from inference.llama_backend import BackendConfig
from inference.model_files import resolve_model_path
from inference.model_runner import ModelRunner
from inference.protocol import Chunk
from inference.worker import Worker, WorkerConfig
from tests.inference.scripted_runner import ScriptedRunner

GREEDY = {"temperature": 0.0, "seed": 7, "max_tokens": 24}
QUESTIONS = ["What is the capital of France?", "Name a colour.", "Say hello."]


def ask(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


@pytest.fixture(scope="module")
def model_path() -> Path:
    return resolve_model_path(None)


def start_worker(redis_url: str, model_path: Path, slots: int = 2, **config: object) -> Worker:
    backend = BackendConfig(model_path=model_path, slots=slots, ctx_per_slot=1024)
    worker = Worker(
        WorkerConfig(redis_url=redis_url, **config),  # type: ignore[arg-type]
        functools.partial(ModelRunner, backend),
    )
    worker.start()
    return worker


@pytest.fixture
def worker(redis_client: aioredis.Redis, redis_url: str, model_path: Path) -> Iterator[Worker]:
    worker = start_worker(redis_url, model_path, slots=2, name="test-worker")
    yield worker
    worker.stop()


class Pool:
    """Workers started by one test, stopped at its end."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.workers: list[Worker] = []

    def scripted(
        self, name: str = "scripted", runner: ScriptedRunner | None = None, **config: object
    ) -> tuple[Worker, ScriptedRunner]:
        """A started worker over a scripted runner (two slots unless `runner` says)."""
        played = runner or ScriptedRunner()
        worker = Worker(
            WorkerConfig(redis_url=self.redis_url, name=name, **config),  # type: ignore[arg-type]
            lambda: played,
        )
        worker.start()
        self.workers.append(worker)
        return worker, played

    def real(self, model_path: Path, name: str, slots: int = 1, **config: object) -> Worker:
        worker = start_worker(self.redis_url, model_path, slots=slots, name=name, **config)
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture
def pool(redis_client: aioredis.Redis, redis_url: str) -> Iterator[Pool]:
    """(After `redis_client`, which empties the database before the workers start.)"""
    started = Pool(redis_url)
    yield started
    started.stop_all()


@pytest.fixture
async def client(redis_client: aioredis.Redis) -> AsyncIterator[InferenceClient]:
    client = InferenceClient(redis_client, first_chunk_timeout_s=300)
    yield client
    await client.close()


async def complete(client: InferenceClient, question: str, **sampling: object) -> list[Chunk]:
    return [chunk async for chunk in client.stream(ask(question), {**GREEDY, **sampling})]


def text_of(chunks: list[Chunk]) -> str:
    """The answer's text: its deltas joined."""
    return "".join(chunk.text for chunk in chunks if chunk.kind == "delta")


async def until(condition: object, timeout_s: float = 10.0) -> None:
    """Wait for `condition()` (sync or async) to hold."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()  # type: ignore[operator]
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)
