"""Opening Redis clients with errors that say what to fix."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from storage.errors import ServiceUnavailable

# One client serves every conversation of a process, and each answer keeps a few commands
# in flight (its lease, its claim, pacing): when all connections are busy a command waits
# for one (up to `_WAIT_FOR_CONNECTION_S`) instead of failing.
_MAX_CONNECTIONS = 256
_WAIT_FOR_CONNECTION_S = 20.0


async def open_redis(url: str, *, decode_responses: bool = True) -> aioredis.Redis:
    """Return a connected client for `url`, or raise `ServiceUnavailable` naming the setting."""
    try:
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            decode_responses=decode_responses,
            socket_connect_timeout=5.0,
            max_connections=_MAX_CONNECTIONS,
            timeout=_WAIT_FOR_CONNECTION_S,
        )
        client = aioredis.Redis.from_pool(pool)
    except ValueError as exc:
        raise ServiceUnavailable(f"BOT_REDIS_URL is not a valid Redis URL ({exc})") from exc
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise ServiceUnavailable(
            f"cannot reach Redis at {redact_url(url)} ({exc}); start it or fix BOT_REDIS_URL"
        ) from exc
    return client


def redact_url(url: str) -> str:
    """Hide a password in a URL so it can be logged or shown."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    credentials, _, host = rest.rpartition("@")
    user = credentials.split(":", 1)[0]
    return f"{scheme}://{user}:***@{host}" if user else f"{scheme}://***@{host}"
