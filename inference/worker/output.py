"""Writing results: each step's events go to their jobs' output streams in one pipelined
round trip; a job's last chunk acknowledges it and records where its conversation is
cached. One `RunningJob` record per running job holds what that takes."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import redis
from redis.client import Pipeline

from inference.batch_engine import JobDone, TextOut
from inference.protocol import (
    AFFINITY_TTL_S,
    OUTPUT_MAXLEN,
    OUTPUT_TTL_S,
    Chunk,
    affinity_key,
    output_stream,
)
from inference.runner import JobError, RunnerEvent, ToolCallOut
from inference.worker.presence import Presence
from inference.worker.queue import JobQueue


@dataclass
class RunningJob:
    job_id: str
    entry_id: str  # in the jobs stream: acknowledged with the last chunk
    affinity: str  # the conversation, recorded as cached here when the job ends well
    queued_ms: int  # submission to admission (Redis clock)
    admitted: float = field(default_factory=time.monotonic)
    first_output_ms: int = -1  # admission to the first chunk written
    has_ttl: bool = False  # its output stream has an expiry already

    def usage(self) -> dict[str, int]:
        """Where the job's time went, reported in its final chunk's usage."""
        return {"queued_ms": self.queued_ms, "first_output_ms": self.first_output_ms}


def chunk_for(event: RunnerEvent, job: RunningJob | None) -> Chunk:
    if isinstance(event, TextOut):
        return Chunk(kind="delta", text=event.text)
    if isinstance(event, ToolCallOut):
        return Chunk(
            kind="tool_call",
            text=json.dumps(event.call.arguments, ensure_ascii=False),
            tool_name=event.call.name,
            tool_call_id=event.call.call_id,
        )
    if isinstance(event, JobError):
        return Chunk(kind="error", text=event.message)
    return Chunk(
        kind="done",
        finish_reason=event.reason,
        usage={
            "prompt_tokens": event.prompt_tokens,
            "cached_prompt_tokens": event.reused_tokens,
            "restored_prompt_tokens": event.restored_tokens,
            "completion_tokens": event.completion_tokens,
            **(job.usage() if job is not None else {}),
        },
    )


class OutputWriter:
    def __init__(self, client: redis.Redis, queue: JobQueue, presence: Presence) -> None:
        self.client = client
        self.queue = queue
        self.presence = presence
        self.running: dict[str, RunningJob] = {}

    def add(self, job: RunningJob) -> None:
        self.running[job.job_id] = job

    def entry_ids(self) -> list[str]:
        return [job.entry_id for job in self.running.values()]

    def publish(self, events: list[RunnerEvent]) -> None:
        if not events:
            return
        pipe = self.client.pipeline(transaction=False)
        for event in events:
            job = self.running.get(event.job_id)
            if job is not None and job.first_output_ms < 0 and not isinstance(event, JobDone):
                job.first_output_ms = round(1000 * (time.monotonic() - job.admitted))
                self.presence.count_first_output(job.first_output_ms / 1000)
            if isinstance(event, JobError):
                self.presence.count_error()
            elif isinstance(event, JobDone):
                self.presence.count_done(event)
            out = output_stream(event.job_id)
            chunk = chunk_for(event, job)
            pipe.xadd(out, chunk.to_fields(), maxlen=OUTPUT_MAXLEN, approximate=True)  # type: ignore[arg-type]
            # The TTL is set when the stream starts and when it ends (and refreshed with
            # the keep-alive), not on every token: fewer commands per decode step.
            if isinstance(event, JobDone | JobError):
                pipe.expire(out, OUTPUT_TTL_S)
                self._finish(pipe, event)
            elif job is not None and not job.has_ttl:
                pipe.expire(out, OUTPUT_TTL_S)
                job.has_ttl = True
        if len(self.running) != self.presence.busy:
            # A fresh load, so a worker deciding on a handover sees this one's free slots.
            self.presence.announce(pipe, len(self.running))
        pipe.execute()

    def refresh_ttls(self, pipe: Pipeline) -> None:
        for job in self.running.values():
            if job.has_ttl:
                pipe.expire(output_stream(job.job_id), OUTPUT_TTL_S)

    def _finish(self, pipe: Pipeline, event: JobDone | JobError) -> None:
        """Forget a finished job; acknowledge it and, when it ended with an answer, record
        this worker as the one caching its conversation."""
        job = self.running.pop(event.job_id, None)
        if job is None:
            return
        self.queue.ack(pipe, job.entry_id)
        if job.affinity and isinstance(event, JobDone):
            pipe.set(affinity_key(job.affinity), self.presence.name, ex=AFFINITY_TTL_S)
        self.presence.count_finished(time.monotonic() - job.admitted)
