"""Where the app's Redis and PostgreSQL are: the configured URL, or an embedded server.

The app and the `docs` command line both start from here, so they agree on which
database they use (the embedded one under the data directory unless a URL is set).
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from bot.config import Settings
from storage.embedded_postgres import EmbeddedPostgres
from storage.embedded_redis import EmbeddedRedis


async def redis_url(settings: Settings, data_dir: Path, stack: AsyncExitStack) -> str:
    """BOT_REDIS_URL, or the URL of an embedded Redis that `stack` stops."""
    if settings.redis_url:
        return settings.redis_url
    server = EmbeddedRedis(data_dir / "redis")
    await stack.enter_async_context(server)
    return server.url


async def database_url(settings: Settings, data_dir: Path, stack: AsyncExitStack) -> str:
    """BOT_DATABASE_URL, or the URL of an embedded PostgreSQL that `stack` stops."""
    if settings.database_url:
        return settings.database_url
    server = EmbeddedPostgres(data_dir / "postgres")
    await stack.enter_async_context(server)
    return server.url
