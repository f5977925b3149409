"""The job queue as one worker sees it: a consumer group on the jobs stream.

Taking new jobs, taking jobs handed to this worker, claiming jobs whose worker died,
keeping running jobs claimed, acknowledging, failing and dead-lettering. Every call uses
the loop's one Redis connection (one thread), so redis-py hands the same socket back and
the connection id announced for handovers stays right."""

from __future__ import annotations

import logging
from typing import Any

import redis
from redis.client import Pipeline
from redis.exceptions import ResponseError

from inference.fair_queue import Entry
from inference.metrics import WorkerMetrics
from inference.protocol import (
    DEAD_LETTER_MAXLEN,
    DEAD_LETTER_STREAM,
    JOBS_STREAM,
    OUTPUT_MAXLEN,
    OUTPUT_TTL_S,
    WORKER_GROUP,
    Chunk,
    output_stream,
)
from inference.worker.config import WorkerConfig

log = logging.getLogger(__name__)

DEAD_LETTER_MESSAGE = (
    "this request failed on several inference workers and was set aside; "
    "try again, and tell the bot's operator if it keeps happening"
)


def ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(JOBS_STREAM, WORKER_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class JobQueue:
    def __init__(self, client: redis.Redis, config: WorkerConfig, metrics: WorkerMetrics) -> None:
        self.client = client
        self.config = config
        self.metrics = metrics
        self.consumer = config.worker_name

    def read_new(self, count: int, block: bool) -> list[Entry]:
        """Up to `count` jobs never delivered before. Block (up to a second) only when
        nothing runs; otherwise a decode step is waiting."""
        reply: Any = self.client.xreadgroup(
            WORKER_GROUP,
            self.consumer,
            {JOBS_STREAM: ">"},
            count=count,
            block=1000 if block else None,
        )
        if not reply:
            return []
        return [(str(entry_id), dict(fields)) for entry_id, fields in reply[0][1]]

    def take_assigned(self, count: int, held: set[str]) -> list[Entry]:
        """Entries pending for this worker that it does not hold (`held`: entry ids it
        runs or has waiting): jobs other workers handed to it, and any left by an
        earlier run under the same name."""
        pending: Any = self.client.xpending_range(
            JOBS_STREAM, WORKER_GROUP, "-", "+", count + len(held), consumername=self.consumer
        )
        unheld = [entry for entry in pending if entry["message_id"] not in held][:count]
        if not unheld:
            return []
        pipe = self.client.pipeline(transaction=False)
        for entry in unheld:
            # Claiming with the idle time just seen succeeds only if no one claimed the
            # entry since (that restarts its idle time): a worker that recovered it
            # meanwhile keeps it. Without JUSTID the claim counts a delivery and returns
            # the fields.
            idle_ms = entry["time_since_delivered"]
            pipe.xclaim(JOBS_STREAM, WORKER_GROUP, self.consumer, idle_ms, [entry["message_id"]])
        taken = []
        for entry, claimed in zip(unheld, pipe.execute(), strict=True):
            entry_id, deliveries = str(entry["message_id"]), int(entry["times_delivered"]) + 1
            if not claimed:  # another worker took it, or Redis 7+ dropped it as trimmed
                continue
            fields = claimed[0][1]
            if fields is None:  # trimmed from the stream (Redis 6 keeps it pending)
                self.client.xack(JOBS_STREAM, WORKER_GROUP, entry_id)
            elif not self._over_delivered(entry_id, fields, deliveries):
                if deliveries == 1:  # a handover resets the count to 0
                    self.metrics.handovers.labels(direction="received").inc()
                else:
                    log.info("took back job %s, left by an earlier run of this worker", entry_id)
                taken.append((entry_id, dict(fields)))
        return taken

    def claim_abandoned(self, count: int, running: set[str]) -> list[Entry]:
        """Take over jobs whose worker stopped refreshing them (`running`: the ids of
        jobs this worker runs, idle only because a step was slow)."""
        reply: Any = self.client.xautoclaim(
            JOBS_STREAM, WORKER_GROUP, self.consumer, self.config.claim_idle_ms, "0-0", count=count
        )
        taken = []
        for entry_id, fields in reply[1] if reply else []:
            # A trimmed entry: Redis 7+ drops it from the pending list and leaves it out
            # here; Redis 6 answers nil without its id and leaves it pending for this
            # worker, whose `take_assigned` then acknowledges it.
            if fields is None or fields.get("id") in running:
                continue
            pending: Any = self.client.xpending_range(
                JOBS_STREAM, WORKER_GROUP, min=entry_id, max=entry_id, count=1
            )
            deliveries = int(pending[0]["times_delivered"]) if pending else 1
            if self._over_delivered(str(entry_id), dict(fields), deliveries):
                continue
            log.info("claimed job %s from a worker that stopped", entry_id)
            taken.append((str(entry_id), dict(fields)))
        return taken

    def keep(self, pipe: Pipeline, held: list[str]) -> None:
        """Re-claim held entries, so their idle time stays low and no one takes them."""
        if held:
            pipe.xclaim(JOBS_STREAM, WORKER_GROUP, self.consumer, 0, held, justid=True)  # type: ignore[arg-type]

    @staticmethod
    def ack(pipe: Pipeline, entry_id: str) -> None:
        pipe.xack(JOBS_STREAM, WORKER_GROUP, entry_id)

    def skip(self, entry_id: str) -> None:
        """Acknowledge an entry with nothing left to do (answered, or cancelled)."""
        self.client.xack(JOBS_STREAM, WORKER_GROUP, entry_id)

    def fail(self, entry_id: str, job_id: str, message: str) -> None:
        """End a job with an error its requester sees, and acknowledge it."""
        pipe = self.client.pipeline(transaction=False)
        if job_id:
            out = output_stream(job_id)
            error = Chunk(kind="error", text=message)
            pipe.xadd(out, error.to_fields(), maxlen=OUTPUT_MAXLEN, approximate=True)  # type: ignore[arg-type]
            pipe.expire(out, OUTPUT_TTL_S)
        self.ack(pipe, entry_id)
        pipe.execute()

    def _over_delivered(self, entry_id: str, fields: dict[str, str], deliveries: int) -> bool:
        """Dead-letter a job delivered too often (it may be what kills its workers)."""
        if deliveries <= self.config.max_deliveries:
            return False
        log.error("job %s failed %d deliveries; dead-lettered", entry_id, deliveries)
        record = {**fields, "entry_id": entry_id, "deliveries": str(deliveries)}
        self.client.xadd(DEAD_LETTER_STREAM, record, maxlen=DEAD_LETTER_MAXLEN, approximate=True)  # type: ignore[arg-type]
        self.fail(entry_id, fields.get("id", ""), DEAD_LETTER_MESSAGE)
        return True
