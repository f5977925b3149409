"""The async client: submits a job to the pool and yields its output chunks as they come."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from inference.errors import InvalidJob, JobFailed, PoolBusy, PoolUnavailable
from inference.logs import JOB_ID
from inference.output_reader import OutputReader
from inference.protocol import (
    CANCEL_CHANNEL,
    CANCEL_TTL_S,
    JOBS_STREAM,
    WORKER_GROUP,
    WORKER_KEY_PREFIX,
    Chunk,
    Job,
    cancel_key,
    output_stream,
)
from inference.sampling import SamplingParams
from inference.tool_calls import plan_tools

# Bound on the job stream's length; acknowledged entries beyond it are trimmed.
JOBS_MAXLEN = 10_000
# How long a look at the pool (live workers, queue depth) is trusted.
_POOL_CHECK_S = 0.5

log = logging.getLogger(__name__)

# Told the id of every job submitted in this context (and the tasks started from it): a
# caller that must find a job again after it dies (a reply being written) records it.
JOB_SUBMITTED: ContextVar[Callable[[str], None] | None] = ContextVar("job_submitted", default=None)


class InferenceClient:
    """Talks to the worker pool through Redis. Owns no connection: the app passes one in."""

    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        first_chunk_timeout_s: float = 300.0,
        max_queued: int = 256,
    ) -> None:
        self._redis = redis
        self._first_chunk_timeout_s = first_chunk_timeout_s
        # Past this many jobs waiting for a worker, new ones are refused at once with an
        # estimated wait, instead of queueing for minutes.
        self._max_queued = max_queued
        self._reader = OutputReader(redis)
        self._workers: list[dict[str, str]] = []
        self._queued = 0
        self._pool_checked_at = 0.0

    async def live_workers(self) -> list[dict[str, str]]:
        """The workers that announced themselves recently, with their model and load."""
        workers = []
        async for key in self._redis.scan_iter(match=f"{WORKER_KEY_PREFIX}*"):
            info: Any = await self._redis.hgetall(key)
            if info:
                workers.append({"name": str(key).removeprefix(WORKER_KEY_PREFIX), **info})
        return workers

    async def stream(
        self,
        messages: list[dict[str, Any]],
        sampling: dict[str, Any],
        *,
        scope: str = "",
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        affinity: str = "",
        model: str = "",
    ) -> AsyncIterator[Chunk]:
        """Submit a job and yield its chunks until it ends. Closing the iterator early
        cancels the job on the worker."""
        job_id = await self.submit(
            messages,
            sampling,
            scope=scope,
            tools=tools,
            tool_choice=tool_choice,
            affinity=affinity,
            model=model,
        )
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
        self,
        messages: list[dict[str, Any]],
        sampling: dict[str, Any],
        *,
        scope: str = "",
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        affinity: str = "",
        model: str = "",
    ) -> str:
        """Queue a job and return its id. Bad values fail here, before queueing.
        `affinity` names the conversation (any stable key): the pool prefers the worker
        that served its last turn, whose cache still holds the shared prefix. `model`
        names the model that must answer (as workers announce it; empty: any)."""
        params = SamplingParams.parse(sampling)
        if not messages:
            raise InvalidJob("a job needs at least one message")
        # Build the grammar once here too: a schema it cannot handle fails fast.
        plan_tools(tools or [], tool_choice)
        await self._check_pool()
        if model:
            await self._check_model(model)
        job = Job(
            messages=messages,
            sampling=params.model_dump(mode="json"),
            scope=scope,
            tools=tools or [],
            tool_choice=tool_choice,
            affinity=affinity,
            model=model,
        )
        await self._redis.xadd(
            JOBS_STREAM,
            job.to_fields(),  # type: ignore[arg-type]
            maxlen=JOBS_MAXLEN,
            approximate=True,
        )
        self._queued += 1  # until the next look at the queue
        JOB_ID.set(job.job_id)  # the caller's log lines from here on name the job
        observer = JOB_SUBMITTED.get()
        if observer is not None:
            observer(job.job_id)
        log.debug("queued job %s", job.job_id)
        return job.job_id

    async def _check_pool(self) -> None:
        """Refuse at once when no worker is alive or the queue is full. The answer is
        reused for a moment, so a busy bot does not pay these round trips per message."""
        stale = time.monotonic() - self._pool_checked_at > _POOL_CHECK_S
        # A full queue is always looked at afresh before anyone is refused.
        if stale or not self._workers or self._queued >= self._max_queued:
            self._workers = await self.live_workers()
            self._queued = await self.queued_jobs(limit=self._max_queued)
            self._pool_checked_at = time.monotonic()
        if not self._workers:
            raise PoolUnavailable(
                "no inference worker is running; start one with "
                "`python -m inference.worker`, or enable BOT_EMBEDDED_WORKER"
            )
        if self._queued >= self._max_queued:
            wait = estimated_wait_s(self._queued, self._workers)
            raise PoolBusy(
                f"The model is busy with {self._queued}+ waiting requests; try again in "
                f"about {wait:.0f} s.",
                wait,
            )

    async def _check_model(self, model: str) -> None:
        """Refuse a model no live worker serves (looked at afresh before refusing: one
        may have started since the last look)."""
        if any(worker.get("model") == model for worker in self._workers):
            return
        self._workers = await self.live_workers()
        served = sorted({worker.get("model", "") for worker in self._workers} - {""})
        if model not in served:
            raise InvalidJob(
                f"no worker serves the model {model!r}; the pool has: {', '.join(served)}"
            )

    async def queued_jobs(self, limit: int) -> int:
        """Jobs no worker has taken yet, counted up to `limit`."""
        try:
            groups: Any = await self._redis.xinfo_groups(JOBS_STREAM)
        except RedisError:  # no stream yet: nothing queued
            return 0
        group = next((g for g in groups if g.get("name") == WORKER_GROUP), None)
        start = f"({group['last-delivered-id']}" if group else "-"
        waiting: Any = await self._redis.xrange(JOBS_STREAM, min=start, max="+", count=limit)
        return len(waiting)

    async def has_output(self, job_id: str) -> bool:
        """Whether the job's output is still in Redis (it expires after the job ends)."""
        return bool(await self._redis.exists(output_stream(job_id)))

    async def cancel(self, job_id: str) -> None:
        pipe = self._redis.pipeline(transaction=False)
        pipe.set(cancel_key(job_id), "1", ex=CANCEL_TTL_S)
        pipe.publish(CANCEL_CHANNEL, job_id)
        await pipe.execute()

    async def _read(self, job_id: str, last_id: str) -> AsyncIterator[Chunk]:
        stream = output_stream(job_id)
        queue = await self._reader.follow(stream, last_id)
        try:
            while True:
                try:
                    item = await asyncio.wait_for(queue.get(), self._first_chunk_timeout_s)
                except TimeoutError:
                    raise PoolUnavailable(
                        f"no answer from the inference pool in "
                        f"{self._first_chunk_timeout_s:.0f} s; it may be overloaded or down"
                    ) from None
                if isinstance(item, BaseException):
                    raise PoolUnavailable(f"lost the connection to Redis ({item})") from item
                entry_id, fields = item
                yield Chunk.from_fields(fields, entry_id)
        finally:
            self._reader.forget(stream)

    async def close(self) -> None:
        """Stop the shared output reader (the Redis connection stays the caller's)."""
        await self._reader.close()


def estimated_wait_s(queued: int, workers: list[dict[str, str]]) -> float:
    """Seconds until a new job would start: the queue shared by all slots, at the
    workers' recent average job time (30 s when they have not finished any yet)."""
    slots = sum(int(worker.get("slots", 1) or 1) for worker in workers) or 1
    times = [float(worker.get("avg_job_s", 0) or 0) for worker in workers]
    average = max(times) if any(times) else 30.0
    return max(1.0, queued / slots * average)
