"""The async client: submits a job to the pool and yields its output chunks as they come."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from inference.errors import InvalidJob, JobFailed, PoolUnavailable
from inference.protocol import (
    CANCEL_TTL_S,
    JOBS_STREAM,
    WORKER_KEY_PREFIX,
    Chunk,
    Job,
    cancel_key,
    output_stream,
)
from inference.sampling import SamplingParams

# Bound on the job stream's length; acknowledged entries beyond it are trimmed.
JOBS_MAXLEN = 10_000


class InferenceClient:
    """Talks to the worker pool through Redis. Owns no connection: the app passes one in."""

    def __init__(self, redis: aioredis.Redis, *, first_chunk_timeout_s: float = 300.0) -> None:
        self._redis = redis
        self._first_chunk_timeout_s = first_chunk_timeout_s

    async def live_workers(self) -> list[dict[str, str]]:
        """The workers that announced themselves recently, with their model and load."""
        workers = []
        async for key in self._redis.scan_iter(match=f"{WORKER_KEY_PREFIX}*"):
            info: Any = await self._redis.hgetall(key)
            if info:
                workers.append({"name": str(key).removeprefix(WORKER_KEY_PREFIX), **info})
        return workers

    async def stream(
        self, messages: list[dict[str, Any]], sampling: dict[str, Any], *, scope: str = ""
    ) -> AsyncIterator[Chunk]:
        """Submit a job and yield its chunks until it ends. Closing the iterator early
        cancels the job on the worker."""
        job_id = await self.submit(messages, sampling, scope=scope)
        async for chunk in self.follow(job_id):
            yield chunk

    async def follow(self, job_id: str, resume_from: str = "0-0") -> AsyncIterator[Chunk]:
        """Yield the chunks of a submitted job after entry `resume_from`, until it ends:
        a client that lost its connection resumes from the last entry id it saw.
        Closing the iterator early cancels the job."""
        finished = False
        try:
            async for chunk in self._read(job_id, resume_from):
                if chunk.kind == "error":
                    finished = True
                    raise JobFailed(chunk.text or "the model failed on this request")
                yield chunk
                if chunk.kind == "done":
                    finished = True
                    return
        finally:
            if not finished:
                with contextlib.suppress(RedisError, asyncio.CancelledError):
                    await self.cancel(job_id)

    async def submit(
        self, messages: list[dict[str, Any]], sampling: dict[str, Any], *, scope: str = ""
    ) -> str:
        """Queue a job and return its id. Bad values fail here, before queueing."""
        params = SamplingParams.parse(sampling)
        if not messages:
            raise InvalidJob("a job needs at least one message")
        if not await self.live_workers():
            raise PoolUnavailable(
                "no inference worker is running; start one with "
                "`python -m inference.worker`, or enable BOT_EMBEDDED_WORKER"
            )
        job = Job(messages=messages, sampling=params.model_dump(mode="json"), scope=scope)
        await self._redis.xadd(
            JOBS_STREAM,
            job.to_fields(),  # type: ignore[arg-type]
            maxlen=JOBS_MAXLEN,
            approximate=True,
        )
        return job.job_id

    async def cancel(self, job_id: str) -> None:
        await self._redis.set(cancel_key(job_id), "1", ex=CANCEL_TTL_S)

    async def _read(self, job_id: str, last_id: str) -> AsyncIterator[Chunk]:
        stream = output_stream(job_id)
        waited = 0.0
        block_ms = 1000
        while True:
            try:
                reply: Any = await self._redis.xread({stream: last_id}, count=64, block=block_ms)
            except RedisError as exc:
                raise PoolUnavailable(f"lost the connection to Redis ({exc})") from exc
            if not reply:
                waited += block_ms / 1000
                if waited >= self._first_chunk_timeout_s:
                    raise PoolUnavailable(
                        f"no answer from the inference pool in {waited:.0f} s; "
                        "it may be overloaded or down"
                    )
                continue
            waited = 0.0
            for entry_id, fields in reply[0][1]:
                last_id = entry_id
                yield Chunk.from_fields(fields, entry_id)
