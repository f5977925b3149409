"""One blocking `XREAD` for the outputs of every job a process follows.

A bot process follows many answers at once. Reading each job's stream with its own
blocking call would cost one round trip and one wake-up per token per job; this reader
asks Redis for all of them in one call, and hands each entry to its job's queue. A
small "wake" stream of its own interrupts the blocking read when a new job is followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

Entry = tuple[str, dict[str, str]]

_BLOCK_MS = 1000
_WAKE_TTL_S = 120


@dataclass
class _Follower:
    last_id: str
    queue: asyncio.Queue[Entry | BaseException] = field(default_factory=asyncio.Queue)


class OutputReader:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._wake_stream = f"inference:wake:{uuid.uuid4().hex}"
        self._wake_id = "$"
        self._followers: dict[str, _Follower] = {}
        self._task: asyncio.Task[None] | None = None

    async def follow(self, stream: str, last_id: str) -> asyncio.Queue[Entry | BaseException]:
        """Start delivering `stream`'s entries after `last_id` to the returned queue."""
        follower = _Follower(last_id)
        self._followers[stream] = follower
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="inference-output-reader")
        else:
            await self._wake()
        return follower.queue

    def forget(self, stream: str) -> None:
        self._followers.pop(stream, None)

    async def close(self) -> None:
        self._followers.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        with contextlib.suppress(RedisError):
            await self._redis.delete(self._wake_stream)

    async def _wake(self) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(self._wake_stream, {"wake": "1"}, maxlen=16, approximate=False)
        pipe.expire(self._wake_stream, _WAKE_TTL_S)
        await pipe.execute()

    async def _run(self) -> None:
        try:
            while self._followers:
                streams = {name: f.last_id for name, f in self._followers.items()}
                streams[self._wake_stream] = self._wake_id
                reply: Any = await self._redis.xread(streams, count=64, block=_BLOCK_MS)  # type: ignore[arg-type]
                for stream, entries in reply or []:
                    if stream == self._wake_stream:
                        self._wake_id = entries[-1][0]
                        continue
                    follower = self._followers.get(stream)
                    if follower is None:
                        continue
                    for entry_id, fields in entries:
                        follower.last_id = entry_id
                        follower.queue.put_nowait((entry_id, fields))
        except RedisError as exc:
            for follower in self._followers.values():
                follower.queue.put_nowait(exc)
            self._followers.clear()
