"""The inference worker: takes jobs from the Redis Stream and streams completions back.

One worker process holds one model and one llama.cpp context with `slots` sequences,
driven by one loop in one thread (a llama.cpp context is not thread-safe). Each turn of
the loop admits new jobs into free slots, runs one batched decode step for every running
job, and writes what each produced to its output stream in one pipelined round trip.

Queue semantics: jobs are read through a consumer group and acknowledged only after
their final chunk is written. While a job runs, the worker re-claims it every few
seconds, which keeps its idle time low; a job whose worker died goes idle and another
worker claims it (`XAUTOCLAIM`). A job delivered more than `max_deliveries` times goes
to the dead-letter stream and its requester gets a clear error.

Conversation affinity: a worker records itself as the holder of a finished job's
conversation (`affinity_key`). A worker that reads a new job whose conversation another
live worker with a free slot holds moves the entry into that worker's pending list
(`XCLAIM`) and wakes it; that worker reuses the cached prefix instead of evaluating the
whole history again. Each worker looks at its own pending list for such entries as
often as at the stream. Only entries read fresh from the stream are handed over, so a
job moves at most once; one handed to a worker that dies is recovered like any other.

Run standalone with `python -m inference.worker --model PATH --slots N`; the app runs
one as its child process (`inference.embedded.EmbeddedWorker`) when no separate pool is
configured. In-process (tests, benchmarks): `Worker(config, runner_factory).start()`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.exceptions import RedisError, ResponseError

from inference.batch_engine import JobDone, TextOut
from inference.errors import InferenceError
from inference.fair_queue import FairQueue
from inference.logs import configure_logging
from inference.metrics import WorkerMetrics
from inference.model_runner import JobError, ModelRunner, RunnerEvent, ToolCallOut
from inference.peers import Peer, peers_serving, read_peers
from inference.protocol import (
    AFFINITY_TTL_S,
    CANCEL_CHANNEL,
    DEAD_LETTER_MAXLEN,
    DEAD_LETTER_STREAM,
    JOBS_STREAM,
    OUTPUT_MAXLEN,
    OUTPUT_TTL_S,
    WORKER_GROUP,
    WORKER_HEARTBEAT_TTL_S,
    Chunk,
    Job,
    affinity_key,
    cancel_key,
    output_stream,
    worker_key,
)
from inference.sampling import SamplingParams
from inference.status_http import StatusServer

log = logging.getLogger(__name__)

RunnerFactory = Callable[[], ModelRunner]
Entry = tuple[str, dict[str, str]]  # a job stream entry: its id and fields
# Host RAM for evicted conversations' KV states: SmolLM2-135M needs about 23 KB a token,
# so 256 MB keeps about 11,000 tokens of history (an 8B model: about 2,000).
DEFAULT_HOST_CACHE_MB = 256


@dataclass(frozen=True)
class WorkerConfig:
    redis_url: str
    name: str = ""
    # The name jobs ask for this worker's model by (default: the GGUF file's stem).
    model_name: str = ""
    # A pending job idle this long belongs to a dead worker and may be claimed.
    claim_idle_ms: int = 15_000
    # Deliveries after which a job is dead-lettered, so a poison job cannot loop forever.
    max_deliveries: int = 3
    # How often running jobs are re-claimed (must be well under claim_idle_ms).
    keepalive_s: float = 2.0
    # Cancellations arrive by pub/sub at once; this re-check of the cancel keys covers
    # messages missed while the subscription reconnected.
    cancel_check_s: float = 1.0
    # While jobs run, how often the queue is polled for new ones (a round trip each).
    poll_busy_s: float = 0.025
    heartbeat_s: float = 2.0
    # A worker that has not announced itself for this long gets no handed-over jobs:
    # alive, it announces every `heartbeat_s` (and whenever its load changes).
    handover_fresh_s: float = 6.0
    # Jobs taken beyond the free slots, to choose fairly between communities: a busy one
    # cannot fill every slot while another waits.
    lookahead: int = 8

    @property
    def worker_name(self) -> str:
        return self.name or f"{socket.gethostname()}-{os.getpid()}"


def ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(JOBS_STREAM, WORKER_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


# Tokens per second are reported over this recent window (the chat's /stats).
_RATE_WINDOW_S = 60.0


@dataclass
class _Stats:
    jobs_done: int = 0
    job_seconds: float = 0.0  # summed wall time of finished jobs, for "busy, about N s"
    recent_tokens: deque[tuple[float, int]] = field(default_factory=deque)

    def add_tokens(self, count: int) -> None:
        self.recent_tokens.append((time.monotonic(), count))

    def tokens_per_s(self) -> float:
        """Tokens generated per second over the last minute."""
        horizon = time.monotonic() - _RATE_WINDOW_S
        while self.recent_tokens and self.recent_tokens[0][0] < horizon:
            self.recent_tokens.popleft()
        return sum(count for _, count in self.recent_tokens) / _RATE_WINDOW_S


@dataclass
class _JobTiming:
    """Where a job's time went, reported in its final chunk's usage."""

    queued_ms: int  # submission to admission (Redis clock)
    admitted: float = field(default_factory=time.monotonic)
    first_output_ms: int = -1  # admission to the first chunk written

    def usage(self) -> dict[str, int]:
        return {"queued_ms": self.queued_ms, "first_output_ms": self.first_output_ms}


class Worker:
    def __init__(self, config: WorkerConfig, runner_factory: RunnerFactory) -> None:
        self.config = config
        self.metrics = WorkerMetrics()
        self.runner_factory = runner_factory
        self.stop_event = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._listener: threading.Thread | None = None
        self.startup_error: BaseException | None = None
        self.model_name = config.model_name  # until the model is loaded, if unset
        self.tool_format = ""
        self.slots = 0
        self._entries: dict[str, str] = {}  # job id -> stream entry id, for running jobs
        self._started_at: dict[str, float] = {}
        self._streams_with_ttl: set[str] = set()
        self._timings: dict[str, _JobTiming] = {}
        self._affinities: dict[str, str] = {}  # job id -> affinity key, for running jobs
        self._client_id = 0  # of the loop's Redis connection, announced for handovers
        self._announced_busy = -1
        self._waiting = FairQueue(extra=config.lookahead)
        self._heard_cancels: set[str] = set()
        self._cancel_lock = threading.Lock()
        self._stats = _Stats()
        self._last_heartbeat = 0.0  # monotonic; 0 until the model is loaded

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Load the model and start serving; returns once the model is loaded."""
        client = self._client()
        ensure_group(client)
        client.close()
        self._thread = threading.Thread(target=self._run, name="inference-worker", daemon=True)
        self._thread.start()
        self._listener = threading.Thread(
            target=self._listen_for_cancels, name="inference-cancels", daemon=True
        )
        self._listener.start()
        self._ready.wait()
        if self.startup_error is not None:
            self.stop()
            raise self.startup_error

    def health_problem(self) -> str | None:
        """None while the loop runs and reaches Redis; else what is wrong (for /healthz).
        Read from another thread: it only looks at plain attributes."""
        if self._thread is None or not self._thread.is_alive():
            return "the worker loop is not running"
        if not self._last_heartbeat:
            return "the model is still loading"
        silent = time.monotonic() - self._last_heartbeat
        if silent > max(15.0, 3 * self.config.heartbeat_s):
            return f"no heartbeat to Redis for {silent:.0f} s"
        return None

    def stop(self) -> None:
        """Stop serving. Running jobs stay pending for another worker to finish."""
        self.stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        if self._listener is not None:
            self._listener.join(timeout=5)
            self._listener = None

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.config.redis_url, decode_responses=True)

    # -- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            runner = self.runner_factory()
        except BaseException as exc:  # reported to start() through startup_error
            self.startup_error = exc
            self._ready.set()
            return
        self.model_name = self.config.model_name or runner.model_name
        self.tool_format = runner.call_format.name
        self.slots = runner.free_slots
        client = self._client()
        try:
            self._heartbeat(client, runner)
            self._ready.set()
            self._serve(client, runner)
        finally:
            runner.close()
            with contextlib.suppress(RedisError):
                client.delete(worker_key(self.config.worker_name))
            client.close()

    def _serve(self, client: redis.Redis, runner: ModelRunner) -> None:
        consumer = self.config.worker_name
        last = {
            "heartbeat": 0.0,
            "claim": 0.0,
            "cancel": 0.0,
            "poll": 0.0,
            "keepalive": time.monotonic(),
        }
        while not self.stop_event.is_set():
            try:
                now = time.monotonic()
                if now - last["heartbeat"] >= self.config.heartbeat_s:
                    last["heartbeat"] = now
                    self._heartbeat(client, runner)
                if runner.free_slots and now - last["claim"] >= self.config.claim_idle_ms / 3000:
                    last["claim"] = now
                    claimed = self._claim_abandoned(client, consumer, runner.free_slots)
                    for entry in self._hand_over(client, claimed, fresh=False):
                        self._admit(client, runner, *entry)
                idle = not runner.active_jobs and not self._waiting
                room = self._waiting.room(runner.free_slots)
                if room and (idle or now - last["poll"] >= self.config.poll_busy_s):
                    last["poll"] = now
                    self._take_jobs(client, consumer, room, idle)
                while runner.free_slots and self._waiting:
                    self._admit(client, runner, *self._waiting.next())
                if not runner.active_jobs:
                    continue
                self._apply_heard_cancels(client, runner)
                step_started = time.monotonic()
                events = runner.step()
                self.metrics.step_seconds.observe(time.monotonic() - step_started)
                self.metrics.batch_tokens.observe(runner.engine.last_batch_size)
                self.metrics.active_sequences.set(len(runner.active_jobs))
                self._publish(client, events)
                if now - last["cancel"] >= self.config.cancel_check_s:
                    last["cancel"] = now
                    self._apply_cancels(client, runner)
                if now - last["keepalive"] >= self.config.keepalive_s:
                    last["keepalive"] = now
                    self._keep_claims(client, consumer)
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    # Redis lost the group (flushed, or restarted without persistence).
                    ensure_group(client)
                else:
                    log.error("worker %s: Redis refused a command: %s", consumer, exc)
                    self.stop_event.wait(1.0)
            except RedisError as exc:
                log.warning("worker %s lost Redis (%s); retrying", consumer, exc)
                self.stop_event.wait(1.0)

    # -- taking jobs -----------------------------------------------------------------
    def _take_jobs(self, client: redis.Redis, consumer: str, room: int, idle: bool) -> None:
        """Queue up to `room` jobs: first those handed to this worker, then new ones,
        less those handed on to the worker caching their conversation."""
        assigned = self._take_assigned(client, consumer, room)
        for entry in assigned:
            self._waiting.add(*entry)
        if len(assigned) < room:
            # No waiting for new jobs while handed ones are ready to run.
            new = self._read_new(client, consumer, room - len(assigned), idle and not assigned)
            for entry in self._hand_over(client, new):
                self._waiting.add(*entry)

    def _read_new(self, client: redis.Redis, consumer: str, count: int, idle: bool) -> list[Entry]:
        # Block only when nothing runs; otherwise a decode step is waiting.
        reply: Any = client.xreadgroup(
            WORKER_GROUP, consumer, {JOBS_STREAM: ">"}, count=count, block=1000 if idle else None
        )
        if not reply:
            return []
        return [(str(entry_id), dict(fields)) for entry_id, fields in reply[0][1]]

    def _hand_over(
        self, client: redis.Redis, entries: list[Entry], fresh: bool = True
    ) -> list[Entry]:
        """Move each job that should run on another live worker into that worker's
        pending list; return the jobs left to run here. A job naming a model served
        elsewhere goes to the worker serving it with the most free slots (none: the job
        fails, clearly). A fresh job (just read from the stream) whose conversation
        another worker with a free slot caches goes there.

        Only fresh jobs follow their conversation, never ones handed to or reclaimed by
        this worker: so a job moves once for its cache, and workers with diverging views
        of an affinity cannot bounce it between them."""
        me, fresh_s = self.config.worker_name, self.config.handover_fresh_s
        foreign = {fields.get("model", "") for _, fields in entries} - {"", self.model_name}
        serving = {model: peers_serving(client, model, fresh_s, me) for model in foreign}
        holders = self._holders(client, entries) if fresh else {}
        handed: list[tuple[str, Peer]] = []
        unserved: list[Entry] = []
        for entry in entries:
            entry_id, fields = entry
            model = fields.get("model", "")
            if model in serving:
                if not serving[model]:
                    unserved.append(entry)
                    continue
                target = max(serving[model], key=lambda peer: peer.free_slots)
            else:
                holder = holders.get(fields.get("affinity", ""))
                if holder is None or holder.free_slots <= 0 or model not in ("", holder.model):
                    continue
                target = holder
            target.free_slots -= 1  # its announced load is a moment old: do not flood it
            handed.append((entry_id, target))
        for entry_id, fields in unserved:
            message = f"no worker serves the model {fields['model']!r} now"
            self._fail(client, entry_id, fields.get("id", ""), message)
        sent = self._move(client, handed, fresh)
        done = sent | {entry_id for entry_id, _ in unserved}
        return [entry for entry in entries if entry[0] not in done]

    def _move(self, client: redis.Redis, handed: list[tuple[str, Peer]], fresh: bool) -> set[str]:
        """Put entries on other workers' pending lists; the ids of those moved."""
        if not handed:
            return set()
        pipe = client.pipeline(transaction=False)
        for entry_id, peer in handed:
            # JUSTID leaves the delivery count alone; for a fresh entry RETRYCOUNT 0
            # takes back this worker's read, so the receiver's claim counts as the job's
            # first delivery (a reclaimed one keeps its count, for the dead-letter limit).
            retries = 0 if fresh else None
            pipe.xclaim(
                JOBS_STREAM, WORKER_GROUP, peer.name, 0, [entry_id], justid=True, retrycount=retries
            )
        for client_id in {peer.client_id for _, peer in handed} - {0}:
            # An idle receiver is blocked reading the stream: wake it to look now. It may
            # be refused (an ACL without CLIENT); then it looks within a second anyway.
            pipe.client_unblock(client_id)
        claims = pipe.execute(raise_on_error=False)[: len(handed)]
        sent = {
            entry_id
            for (entry_id, _), claimed in zip(handed, claims, strict=True)
            if claimed and not isinstance(claimed, Exception)  # else still ours: run it here
        }
        self.metrics.handovers.labels(direction="sent").inc(len(sent))
        return sent

    def _holders(self, client: redis.Redis, entries: list[Entry]) -> dict[str, Peer]:
        """By affinity key: the live worker other than this one caching that conversation."""
        ordered = sorted({fields.get("affinity", "") for _, fields in entries} - {""})
        if not ordered:
            return {}
        names: list[str | None] = client.mget([affinity_key(key) for key in ordered])  # type: ignore[assignment]
        by_key = {
            key: name
            for key, name in zip(ordered, names, strict=True)
            if name and name != self.config.worker_name
        }
        peers = read_peers(client, by_key.values(), self.config.handover_fresh_s)
        return {key: peers[name] for key, name in by_key.items() if name in peers}

    def _take_assigned(self, client: redis.Redis, consumer: str, count: int) -> list[Entry]:
        """Entries pending for this worker that it does not hold: jobs other workers
        handed to it, and any left by an earlier run under the same name."""
        held = set(self._held_entry_ids())
        pending: Any = client.xpending_range(
            JOBS_STREAM, WORKER_GROUP, "-", "+", count + len(held), consumername=consumer
        )
        unheld = [entry for entry in pending if entry["message_id"] not in held][:count]
        if not unheld:
            return []
        pipe = client.pipeline(transaction=False)
        for entry in unheld:
            # Claiming with the idle time just seen succeeds only if no one claimed the
            # entry since (that restarts its idle time): a worker that recovered it
            # meanwhile keeps it. Without JUSTID the claim counts a delivery and returns
            # the fields.
            idle_ms = entry["time_since_delivered"]
            pipe.xclaim(JOBS_STREAM, WORKER_GROUP, consumer, idle_ms, [entry["message_id"]])
        taken = []
        for entry, claimed in zip(unheld, pipe.execute(), strict=True):
            entry_id, deliveries = str(entry["message_id"]), int(entry["times_delivered"]) + 1
            if not claimed:  # another worker took it, or Redis 7+ dropped it as trimmed
                continue
            fields = claimed[0][1]
            if fields is None:  # trimmed from the stream (Redis 6 keeps it pending)
                client.xack(JOBS_STREAM, WORKER_GROUP, entry_id)
            elif not self._over_delivered(client, entry_id, fields, deliveries):
                if deliveries == 1:  # a handover resets the count to 0
                    self.metrics.handovers.labels(direction="received").inc()
                else:
                    log.info("took back job %s, left by an earlier run of this worker", entry_id)
                taken.append((entry_id, dict(fields)))
        return taken

    def _claim_abandoned(self, client: redis.Redis, consumer: str, count: int) -> list[Entry]:
        """Take over jobs whose worker stopped refreshing them."""
        reply: Any = client.xautoclaim(
            JOBS_STREAM, WORKER_GROUP, consumer, self.config.claim_idle_ms, "0-0", count=count
        )
        taken = []
        for entry_id, fields in reply[1] if reply else []:
            # A trimmed entry: Redis 7+ drops it from the pending list and leaves it out
            # here; Redis 6 answers nil without its id and leaves it pending for this
            # worker, whose `_take_assigned` then acknowledges it.
            if fields is None:
                continue
            if fields.get("id") in self._entries:
                continue  # our own job, idle only because a step was slow: keep it running
            pending: Any = client.xpending_range(
                JOBS_STREAM, WORKER_GROUP, min=entry_id, max=entry_id, count=1
            )
            deliveries = int(pending[0]["times_delivered"]) if pending else 1
            if self._over_delivered(client, str(entry_id), dict(fields), deliveries):
                continue
            log.info("claimed job %s from a worker that stopped", entry_id)
            taken.append((str(entry_id), dict(fields)))
        return taken

    def _over_delivered(
        self, client: redis.Redis, entry_id: str, fields: dict[str, str], deliveries: int
    ) -> bool:
        """Dead-letter a job delivered too often (it may be what kills its workers)."""
        if deliveries <= self.config.max_deliveries:
            return False
        self._dead_letter(client, entry_id, fields, deliveries)
        return True

    def _admit(
        self, client: redis.Redis, runner: ModelRunner, entry_id: str, fields: dict[str, str]
    ) -> None:
        job_id = fields.get("id", "")
        try:
            job = Job.from_fields(fields)
            params = SamplingParams.parse(job.sampling)
        except (KeyError, ValueError, InferenceError) as exc:
            self._fail(client, entry_id, job_id, f"malformed job: {exc}")
            return
        # What an earlier delivery already wrote: a worker that died mid-answer leaves the
        # start of it in the output stream, and the requester has shown it.
        pipe = client.pipeline(transaction=False)
        pipe.xrange(output_stream(job.job_id))
        pipe.exists(cancel_key(job.job_id))
        pipe.time()
        written, cancelled, (seconds, micros) = pipe.execute()
        kinds = {entry_fields.get("kind") for _, entry_fields in written}
        if kinds & {"done", "error"} or cancelled:
            client.xack(JOBS_STREAM, WORKER_GROUP, entry_id)
            return
        deltas = [entry_fields.get("text", "") for _, entry_fields in written]
        try:
            runner.start(
                job.job_id,
                job.messages,
                params,
                job.tools,
                job.tool_choice,
                continue_from="".join(deltas),
                already_generated=len(deltas),
            )
        except InferenceError as exc:
            self._fail(client, entry_id, job.job_id, str(exc))
            return
        self._entries[job.job_id] = entry_id
        if job.affinity:
            self._affinities[job.job_id] = job.affinity
        self._started_at[job.job_id] = time.monotonic()
        # The entry id's first part is the Redis clock at submission, in milliseconds.
        submitted_ms = int(entry_id.split("-", 1)[0])
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        self._timings[job.job_id] = _JobTiming(queued_ms=max(0, now_ms - submitted_ms))
        self.metrics.queue_wait.observe(self._timings[job.job_id].queued_ms / 1000)

    # -- writing results -------------------------------------------------------------
    def _publish(self, client: redis.Redis, events: list[RunnerEvent]) -> None:
        if not events:
            return
        pipe = client.pipeline(transaction=False)
        for event in events:
            out = output_stream(event.job_id)
            timing = self._timings.get(event.job_id)
            if timing is not None and timing.first_output_ms < 0 and not isinstance(event, JobDone):
                timing.first_output_ms = round(1000 * (time.monotonic() - timing.admitted))
                self.metrics.time_to_first_token.observe(timing.first_output_ms / 1000)
            if isinstance(event, TextOut):
                chunk = Chunk(kind="delta", text=event.text)
            elif isinstance(event, ToolCallOut):
                chunk = Chunk(
                    kind="tool_call",
                    text=json.dumps(event.call.arguments, ensure_ascii=False),
                    tool_name=event.call.name,
                    tool_call_id=event.call.call_id,
                )
            elif isinstance(event, JobError):
                chunk = Chunk(kind="error", text=event.message)
                self.metrics.jobs.labels(outcome="error").inc()
            else:
                self.metrics.jobs.labels(outcome=event.reason).inc()
                self.metrics.prompt_tokens.inc(event.prompt_tokens)
                self.metrics.reused_prompt_tokens.inc(event.reused_tokens)
                self.metrics.restored_prompt_tokens.inc(event.restored_tokens)
                self.metrics.generated_tokens.inc(event.completion_tokens)
                self._stats.add_tokens(event.completion_tokens)
                chunk = Chunk(
                    kind="done",
                    finish_reason=event.reason,
                    usage={
                        "prompt_tokens": event.prompt_tokens,
                        "cached_prompt_tokens": event.reused_tokens,
                        "restored_prompt_tokens": event.restored_tokens,
                        "completion_tokens": event.completion_tokens,
                        **(timing.usage() if timing is not None else {}),
                    },
                )
            pipe.xadd(out, chunk.to_fields(), maxlen=OUTPUT_MAXLEN, approximate=True)  # type: ignore[arg-type]
            # The TTL is set when the stream starts and when it ends (and refreshed with
            # the keep-alive), not on every token: fewer commands per decode step.
            if isinstance(event, JobDone | JobError):
                pipe.expire(out, OUTPUT_TTL_S)
                self._finish(pipe, event)
            elif event.job_id not in self._streams_with_ttl:
                pipe.expire(out, OUTPUT_TTL_S)
                self._streams_with_ttl.add(event.job_id)
        if len(self._entries) != self._announced_busy:
            # A fresh load, so a worker deciding on a handover sees this one's free slots.
            self._announce(pipe)
        pipe.execute()

    def _finish(self, pipe: redis.client.Pipeline, event: JobDone | JobError) -> None:
        """Forget a finished job; acknowledge it and, when it ended with an answer, record
        this worker as the one caching its conversation."""
        self._streams_with_ttl.discard(event.job_id)
        entry_id = self._entries.pop(event.job_id, None)
        started = self._started_at.pop(event.job_id, None)
        affinity = self._affinities.pop(event.job_id, "")
        self._timings.pop(event.job_id, None)
        if entry_id is not None:
            pipe.xack(JOBS_STREAM, WORKER_GROUP, entry_id)
        if affinity and isinstance(event, JobDone):
            pipe.set(affinity_key(affinity), self.config.worker_name, ex=AFFINITY_TTL_S)
        if started is not None:
            self._stats.jobs_done += 1
            self._stats.job_seconds += time.monotonic() - started

    def _listen_for_cancels(self) -> None:
        """Thread: collect job ids published on the cancel channel."""
        while not self.stop_event.is_set():
            client = self._client()
            pubsub = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(CANCEL_CHANNEL)
                while not self.stop_event.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None:
                        with self._cancel_lock:
                            self._heard_cancels.add(str(message["data"]))
            except RedisError:
                self.stop_event.wait(1.0)
            finally:
                pubsub.close()
                client.close()

    def _apply_heard_cancels(self, client: redis.Redis, runner: ModelRunner) -> None:
        with self._cancel_lock:
            heard, self._heard_cancels = self._heard_cancels, set()
        for job_id in heard & self._entries.keys():
            self._publish(client, runner.cancel(job_id))

    def _apply_cancels(self, client: redis.Redis, runner: ModelRunner) -> None:
        running = list(self._entries)
        pipe = client.pipeline(transaction=False)
        for job_id in running:
            pipe.exists(cancel_key(job_id))
        flags = pipe.execute()
        for job_id, flag in zip(running, flags, strict=True):
            if flag:
                self._publish(client, runner.cancel(job_id))

    def _held_entry_ids(self) -> list[str]:
        """The stream entries of jobs this worker runs or has waiting."""
        return [*self._entries.values(), *self._waiting.entry_ids()]

    def _keep_claims(self, client: redis.Redis, consumer: str) -> None:
        held: list[Any] = self._held_entry_ids()
        if not held:
            return
        pipe = client.pipeline(transaction=False)
        pipe.xclaim(JOBS_STREAM, WORKER_GROUP, consumer, 0, held, justid=True)
        for job_id in self._streams_with_ttl:
            pipe.expire(output_stream(job_id), OUTPUT_TTL_S)
        pipe.execute()

    def _fail(self, client: redis.Redis, entry_id: str, job_id: str, message: str) -> None:
        pipe = client.pipeline(transaction=False)
        if job_id:
            out = output_stream(job_id)
            error = Chunk(kind="error", text=message)
            pipe.xadd(out, error.to_fields(), maxlen=OUTPUT_MAXLEN, approximate=True)  # type: ignore[arg-type]
            pipe.expire(out, OUTPUT_TTL_S)
        pipe.xack(JOBS_STREAM, WORKER_GROUP, entry_id)
        pipe.execute()

    def _dead_letter(
        self, client: redis.Redis, entry_id: str, fields: dict[str, str], deliveries: int
    ) -> None:
        log.error("job %s failed %d deliveries; dead-lettered", entry_id, deliveries)
        record = {**fields, "entry_id": entry_id, "deliveries": str(deliveries)}
        client.xadd(DEAD_LETTER_STREAM, record, maxlen=DEAD_LETTER_MAXLEN, approximate=True)  # type: ignore[arg-type]
        self._fail(
            client,
            entry_id,
            fields.get("id", ""),
            "this request failed on several inference workers and was set aside; "
            "try again, and tell the bot's operator if it keeps happening",
        )

    def _heartbeat(self, client: redis.Redis, runner: ModelRunner) -> None:
        # The loop's commands all go through one connection (one thread, so the pool
        # hands the same one back); its id changes only when redis-py reconnects.
        self._client_id = int(client.client_id())  # type: ignore[arg-type]
        pipe = client.pipeline(transaction=False)
        self._announce(pipe)
        pipe.xpending(JOBS_STREAM, WORKER_GROUP)
        pipe.xlen(DEAD_LETTER_STREAM)
        *_, pending, dead = pipe.execute()
        self.metrics.pending_jobs.set(int(pending["pending"]))
        self.metrics.dead_letter_jobs.set(int(dead))
        self.metrics.kv_cells_used.set(runner.engine.cache_use)
        self._last_heartbeat = time.monotonic()

    def _announce(self, pipe: redis.client.Pipeline) -> None:
        """Refresh this worker's hash: its model, load, and how a handover wakes it."""
        key = worker_key(self.config.worker_name)
        stats = self._stats
        average = stats.job_seconds / stats.jobs_done if stats.jobs_done else 0.0
        self._announced_busy = len(self._entries)
        pipe.hset(
            key,
            mapping={
                "model": self.model_name,
                "tool_format": self.tool_format,
                "slots": self.slots,
                "busy": self._announced_busy,
                "jobs_done": stats.jobs_done,
                "avg_job_s": f"{average:.3f}",
                "tokens_per_s": f"{stats.tokens_per_s():.1f}",
                "seen": f"{time.time():.3f}",
                "client": self._client_id,
            },
        )
        pipe.expire(key, WORKER_HEARTBEAT_TTL_S)


def main(argv: list[str] | None = None) -> int:
    """`python -m inference.worker`: serve jobs from the pool's Redis until stopped."""
    import argparse
    import functools
    import signal
    from pathlib import Path

    from inference.llama_backend import BackendConfig
    from inference.model_files import read_chat_template, resolve_model_path
    from inference.tool_formats import FORMATS

    parser = argparse.ArgumentParser(
        prog="python -m inference.worker", description="Serve chat completions for the pool."
    )
    parser.add_argument("--model", type=Path, help="GGUF chat model (default: bundled SmolLM2)")
    parser.add_argument("--slots", type=int, default=4, help="sequences served at once")
    parser.add_argument("--ctx-per-slot", type=int, default=4096, help="context tokens per slot")
    parser.add_argument("--gpu-layers", type=int, default=0, help="layers on the GPU; -1 = all")
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (default: all)")
    parser.add_argument("--name", default="", help="worker name (default host-pid)")
    parser.add_argument(
        "--model-name", default="", help="the name jobs ask for this model by (default: file stem)"
    )
    parser.add_argument(
        "--host-cache-mb",
        type=int,
        default=DEFAULT_HOST_CACHE_MB,
        help="host RAM for KV states of evicted conversations (0: off)",
    )
    parser.add_argument(
        "--chat-template", type=Path, help="Jinja chat template file replacing the model's own"
    )
    parser.add_argument(
        "--tool-format",
        choices=["auto", *FORMATS],
        default="auto",
        help="how the model writes tool calls (auto: its template's native format, else json)",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=0,
        help="serve Prometheus /metrics and /healthz here (0: off)",
    )
    parser.add_argument(
        "--parent-pid", type=int, default=0, help="stop when this process is no longer the parent"
    )
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BOT_REDIS_URL", ""),
        help="the pool's Redis (default: $BOT_REDIS_URL)",
    )
    args = parser.parse_args(argv)
    configure_logging(os.environ.get("BOT_LOG_LEVEL", "INFO"), os.environ.get("BOT_LOG_FORMAT"))
    if not args.redis_url:
        parser.error("set --redis-url or BOT_REDIS_URL to the pool's Redis")
    if args.slots < 1 or args.ctx_per_slot < 64 or args.host_cache_mb < 0:
        parser.error(
            "--slots must be at least 1, --ctx-per-slot at least 64, --host-cache-mb 0 or more"
        )
    try:
        model_path = resolve_model_path(args.model, setting="--model")
        template = read_chat_template(args.chat_template, setting="--chat-template")
    except InferenceError as exc:
        parser.error(str(exc))
    factory = functools.partial(
        ModelRunner,
        BackendConfig(
            model_path=model_path,
            slots=args.slots,
            ctx_per_slot=args.ctx_per_slot,
            gpu_layers=args.gpu_layers,
            threads=args.threads,
        ),
        host_cache_mb=args.host_cache_mb,
        chat_template=template,
        tool_format=args.tool_format,
    )
    config = WorkerConfig(redis_url=args.redis_url, name=args.name, model_name=args.model_name)
    worker = Worker(config, factory)
    status = None
    if args.metrics_port:
        status = StatusServer(worker.metrics.registry, worker.health_problem, args.metrics_port)
        status.start()
    signal.signal(signal.SIGTERM, lambda *_: worker.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: worker.stop_event.set())
    try:
        worker.start()
    except (RedisError, InferenceError) as exc:
        print(f"worker failed to start: {exc}", file=sys.stderr)
        return 1
    log.info(
        "worker %s serving %s with %d slots", worker.config.worker_name, model_path, args.slots
    )
    while not worker.stop_event.wait(1.0):
        if args.parent_pid and os.getppid() != args.parent_pid:
            log.warning(
                "worker %s: its parent process is gone; stopping", worker.config.worker_name
            )
            break
    worker.stop()
    if status is not None:
        status.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
