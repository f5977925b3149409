"""A worker's presence and its counts: the announcement other workers and
`python -m inference status` read, and the Prometheus metrics. Each event is counted
here once, and both views are fed from that count."""

from __future__ import annotations

import time
from collections import deque

import redis
from redis.client import Pipeline

from inference.batch_engine import JobDone
from inference.metrics import WorkerMetrics
from inference.protocol import (
    DEAD_LETTER_STREAM,
    JOBS_STREAM,
    WORKER_GROUP,
    WORKER_HEARTBEAT_TTL_S,
    worker_key,
)
from inference.runner import RunnerStats
from inference.worker.config import WorkerConfig

# Tokens per second are announced over this recent window (the chat's /stats).
RATE_WINDOW_S = 60.0


class Presence:
    def __init__(
        self,
        client: redis.Redis,
        config: WorkerConfig,
        metrics: WorkerMetrics,
        *,
        model_name: str,
        tool_format: str,
        slots: int,
    ) -> None:
        self.client = client
        self.last_heartbeat = 0.0  # monotonic; when Redis last took an announcement
        self.name = config.worker_name
        self.metrics = metrics
        self.model_name = model_name
        self.tool_format = tool_format
        self.slots = slots
        self.busy = 0  # running jobs, as last announced
        self.jobs_done = 0
        self.job_seconds = 0.0  # summed wall time of finished jobs, for "busy, about N s"
        self._recent_tokens: deque[tuple[float, int]] = deque()
        self.client_id = 0  # of the loop's connection, announced so a handover can wake it

    # -- counting ----------------------------------------------------------------------
    def count_admitted(self, queued_s: float) -> None:
        self.metrics.queue_wait.observe(queued_s)

    def count_first_output(self, seconds: float) -> None:
        self.metrics.time_to_first_token.observe(seconds)

    def count_step(self, seconds: float, stats: RunnerStats, active: int) -> None:
        self.metrics.step_seconds.observe(seconds)
        self.metrics.batch_tokens.observe(stats.batch_tokens)
        self.metrics.active_sequences.set(active)

    def count_error(self) -> None:
        self.metrics.jobs.labels(outcome="error").inc()

    def count_done(self, done: JobDone) -> None:
        self.metrics.jobs.labels(outcome=done.reason).inc()
        self.metrics.prompt_tokens.inc(done.prompt_tokens)
        self.metrics.reused_prompt_tokens.inc(done.reused_tokens)
        self.metrics.restored_prompt_tokens.inc(done.restored_tokens)
        self.metrics.generated_tokens.inc(done.completion_tokens)
        self._recent_tokens.append((time.monotonic(), done.completion_tokens))

    def count_finished(self, seconds: float) -> None:
        """A job this worker ran ended (answered, failed or cancelled) after `seconds`."""
        self.jobs_done += 1
        self.job_seconds += seconds

    def tokens_per_s(self) -> float:
        """Tokens generated per second over the last minute."""
        horizon = time.monotonic() - RATE_WINDOW_S
        while self._recent_tokens and self._recent_tokens[0][0] < horizon:
            self._recent_tokens.popleft()
        return sum(count for _, count in self._recent_tokens) / RATE_WINDOW_S

    # -- announcing --------------------------------------------------------------------
    def heartbeat(self, stats: RunnerStats) -> None:
        """Announce this worker and read the queue's gauges, in one round trip."""
        # The loop's commands all go through one connection (one thread, so the pool
        # hands the same one back); its id changes only when redis-py reconnects.
        self.client_id = int(self.client.client_id())  # type: ignore[arg-type]
        pipe = self.client.pipeline(transaction=False)
        self.announce(pipe, self.busy)
        pipe.xpending(JOBS_STREAM, WORKER_GROUP)
        pipe.xlen(DEAD_LETTER_STREAM)
        *_, pending, dead = pipe.execute()
        self.metrics.pending_jobs.set(int(pending["pending"]))
        self.metrics.dead_letter_jobs.set(int(dead))
        self.metrics.kv_cells_used.set(stats.cache_use)
        self.last_heartbeat = time.monotonic()

    def announce(self, pipe: Pipeline, busy: int) -> None:
        """Refresh this worker's hash: its model, load, and how a handover wakes it."""
        key = worker_key(self.name)
        average = self.job_seconds / self.jobs_done if self.jobs_done else 0.0
        self.busy = busy
        pipe.hset(
            key,
            mapping={
                "model": self.model_name,
                "tool_format": self.tool_format,
                "slots": self.slots,
                "busy": busy,
                "jobs_done": self.jobs_done,
                "avg_job_s": f"{average:.3f}",
                "tokens_per_s": f"{self.tokens_per_s():.1f}",
                "seen": f"{time.time():.3f}",
                "client": self.client_id,
            },
        )
        pipe.expire(key, WORKER_HEARTBEAT_TTL_S)
