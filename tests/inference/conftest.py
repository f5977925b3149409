"""Fixtures for the pool tests: the real SmolLM2 model and workers on the test Redis."""

from __future__ import annotations

import functools
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
