"""The embedded servers start, keep their data across a restart, and stop."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
import redis

from storage.datadir import ensure_writable_dir
from storage.embedded_postgres import EmbeddedPostgres
from storage.embedded_redis import EmbeddedRedis
from storage.errors import DataDirError, ServiceUnavailable
from storage.postgres import MIGRATIONS, open_pool
from storage.redis_conn import open_redis, redact_url


async def test_embedded_redis_keeps_data_across_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / "redis"
    async with EmbeddedRedis(data_dir) as server:
        assert server.started_server
        client = await open_redis(server.url)
        await client.set("greeting", "hello")
        await client.aclose()
        socket_path = server.socket_path
    # Stopped: the socket no longer answers.
    with pytest.raises(redis.ConnectionError):
        redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping()
    async with EmbeddedRedis(data_dir) as server:
        client = await open_redis(server.url)
        assert await client.get("greeting") == "hello"
        await client.aclose()


async def test_second_embedded_redis_reuses_the_running_server(tmp_path: Path) -> None:
    async with EmbeddedRedis(tmp_path / "redis") as first:
        second = EmbeddedRedis(tmp_path / "redis")
        second.start()
        assert not second.started_server  # it found the first one answering
        second.stop()  # and does not stop a server it does not own
        client = await open_redis(first.url)
        assert await client.ping()
        await client.aclose()


async def test_embedded_postgres_has_pgvector_and_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "pg"
    async with EmbeddedPostgres(data_dir) as server:
        pool = await open_pool(server.url)
        async with pool.connection() as conn:
            await conn.execute("CREATE TABLE notes (body text, embedding vector(3))")
            await conn.execute("INSERT INTO notes VALUES ('kept', '[1,2,3]')")
            row = await (await conn.execute("SELECT max(version) FROM schema_version")).fetchone()
            assert row == (len(MIGRATIONS),)
        await pool.close()
        url = server.url
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2).close()
    async with EmbeddedPostgres(data_dir) as server:
        pool = await open_pool(server.url)
        async with pool.connection() as conn:
            rows = await (
                await conn.execute("SELECT body, embedding <-> '[1,2,4]' FROM notes")
            ).fetchall()
        await pool.close()
    assert rows == [("kept", 1.0)]


def test_data_dir_that_is_a_file_gets_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(DataDirError, match="BOT_DATA_DIR"):
        ensure_writable_dir(blocker / "data")


async def test_unreachable_redis_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ServiceUnavailable, match="BOT_REDIS_URL"):
        await open_redis(f"unix://{tmp_path}/nothing-here.sock")


async def test_unreachable_postgres_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ServiceUnavailable, match="BOT_DATABASE_URL"):
        await open_pool(f"postgresql://nobody@/nothing?host={tmp_path}")


def test_passwords_are_hidden_in_shown_urls() -> None:
    assert redact_url("redis://user:s3cret@host:6379/0") == "redis://user:***@host:6379/0"
    assert redact_url("redis://:s3cret@host:6379") == "redis://***@host:6379"
    assert redact_url("unix:///tmp/redis.sock") == "unix:///tmp/redis.sock"
