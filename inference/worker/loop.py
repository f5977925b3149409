"""The worker's loop: one thread that admits jobs into free slots, runs one batched
decode step for every running job, and writes what each produced (see `output`).

The loop owns the runner (a llama.cpp context is not thread-safe) and the one Redis
connection every queue, handover, output and presence command goes through; only the
cancel listener has a thread and a connection of its own."""

from __future__ import annotations

import contextlib
import logging
import threading
import time

import redis
from redis.exceptions import RedisError, ResponseError

from inference.errors import InferenceError
from inference.fair_queue import FairQueue
from inference.metrics import WorkerMetrics
from inference.protocol import Job, cancel_key, output_stream, worker_key
from inference.runner import Runner
from inference.sampling import SamplingParams
from inference.worker.cancels import CancelListener, cancelled
from inference.worker.config import RunnerFactory, WorkerConfig
from inference.worker.handover import Handover
from inference.worker.output import OutputWriter, RunningJob
from inference.worker.presence import Presence
from inference.worker.queue import JobQueue, ensure_group

log = logging.getLogger(__name__)


class WorkerStartError(InferenceError):
    """The worker could not start serving: no model, or no Redis."""


class Worker:
    """`Worker(config, runner_factory).start()` serves until `stop()`."""

    def __init__(self, config: WorkerConfig, runner_factory: RunnerFactory) -> None:
        self.config = config
        self.metrics = WorkerMetrics()
        self.runner_factory = runner_factory
        self.stop_event = threading.Event()
        self.model_name = config.model_name  # until the runner is made, if unset
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._cancels = CancelListener(config.redis_url, self.stop_event)
        self._startup_error: BaseException | None = None
        self._presence: Presence | None = None  # knows the connection the loop blocks on

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Make the runner and start serving; returns once this worker has announced
        itself. Raises `WorkerStartError` when it cannot: the runner failed, Redis is
        unreachable, or start-up took longer than `startup_timeout_s`."""
        client = self._client()
        try:
            ensure_group(client)
        except RedisError as exc:
            raise WorkerStartError(f"the worker cannot reach Redis: {exc}") from exc
        finally:
            client.close()
        self._thread = threading.Thread(target=self._run, name="inference-worker", daemon=True)
        self._thread.start()
        self._cancels.start()
        deadline = time.monotonic() + self.config.startup_timeout_s
        # The thread sets `_ready` once it serves, or records why it could not; waiting
        # in short steps also notices a thread that died without either.
        while not self._ready.wait(0.2):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                break
        error = self._startup_error
        if not self._ready.is_set() and error is None:
            error = WorkerStartError(
                f"the worker did not start in {self.config.startup_timeout_s:.0f} s"
            )
        if error is not None:
            self.stop()
            if isinstance(error, RedisError):
                raise WorkerStartError(f"the worker lost Redis while starting: {error}") from error
            raise error

    def health_problem(self) -> str | None:
        """None while the loop runs and reaches Redis; else what is wrong (for /healthz).
        Read from another thread: it only looks at plain attributes."""
        if self._thread is None or not self._thread.is_alive():
            return "the worker loop is not running"
        presence = self._presence
        if presence is None or not presence.last_heartbeat:
            return "the model is still loading"
        silent = time.monotonic() - presence.last_heartbeat
        if silent > max(15.0, 3 * self.config.heartbeat_s):
            return f"no heartbeat to Redis for {silent:.0f} s"
        return None

    def stop(self) -> None:
        """Stop serving. Running jobs stay pending for another worker to finish."""
        self.stop_event.set()
        if self._thread is not None and self._presence is not None:
            # Wake a loop blocked reading the stream, rather than wait out its block.
            client = self._client()
            with contextlib.suppress(RedisError):
                client.client_unblock(self._presence.client_id)
            client.close()
        if self._thread is not None:
            self._thread.join(timeout=60)
            self._thread = None
        self._cancels.join()

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.config.redis_url, decode_responses=True)

    # -- the loop ----------------------------------------------------------------------
    def _run(self) -> None:
        try:
            runner = self.runner_factory()
        except BaseException as exc:  # reported by start()
            self._startup_error = exc
            return
        client = self._client()
        try:
            self.model_name = self.config.model_name or runner.model_name
            queue = JobQueue(client, self.config, self.metrics)
            presence = Presence(
                client,
                self.config,
                self.metrics,
                model_name=self.model_name,
                tool_format=runner.tool_format,
                slots=runner.free_slots,
            )
            output = OutputWriter(client, queue, presence)
            handover = Handover(queue, self.config, self.metrics, self.model_name)
            try:
                presence.heartbeat(runner.stats())
            except BaseException as exc:  # Redis went away while the model loaded
                self._startup_error = exc
                return
            self._presence = presence
            self._ready.set()
            _Loop(
                self.config,
                runner,
                self.stop_event,
                self._cancels,
                queue=queue,
                presence=presence,
                output=output,
                handover=handover,
            ).serve()
        finally:
            runner.close()
            with contextlib.suppress(RedisError):
                client.delete(worker_key(self.config.worker_name))
            client.close()


class _Loop:
    """The serving loop's state: the parts it drives and when each last ran."""

    def __init__(
        self,
        config: WorkerConfig,
        runner: Runner,
        stop: threading.Event,
        cancels: CancelListener,
        *,
        queue: JobQueue,
        presence: Presence,
        output: OutputWriter,
        handover: Handover,
    ) -> None:
        self.config = config
        self.runner = runner
        self.stop = stop
        self.cancels = cancels
        self.queue = queue
        self.presence = presence
        self.output = output
        self.handover = handover
        self.client = queue.client
        # Jobs taken beyond the free slots, admitted fairly between communities.
        self.waiting = FairQueue(extra=config.lookahead)

    def serve(self) -> None:
        config, runner = self.config, self.runner
        last = {"heartbeat": time.monotonic(), "claim": 0.0, "cancel": 0.0, "poll": 0.0}
        last["keepalive"] = last["heartbeat"]
        while not self.stop.is_set():
            try:
                now = time.monotonic()
                if now - last["heartbeat"] >= config.heartbeat_s:
                    last["heartbeat"] = now
                    self.presence.heartbeat(runner.stats())
                if runner.free_slots and now - last["claim"] >= config.claim_idle_ms / 3000:
                    last["claim"] = now
                    running = set(self.output.running)
                    claimed = self.queue.claim_abandoned(runner.free_slots, running)
                    for entry in self.handover.route(claimed, fresh=False):
                        self.admit(*entry)
                idle = not runner.active_jobs and not self.waiting
                room = self.waiting.room(runner.free_slots)
                if room and (idle or now - last["poll"] >= config.poll_busy_s):
                    last["poll"] = now
                    self.take_jobs(room, idle)
                while runner.free_slots and self.waiting:
                    self.admit(*self.waiting.next())
                if not runner.active_jobs:
                    continue
                self.apply_cancels(self.cancels.take_heard())
                step_started = time.monotonic()
                events = runner.step()
                self.presence.count_step(
                    time.monotonic() - step_started, runner.stats(), len(runner.active_jobs)
                )
                self.output.publish(events)
                if now - last["cancel"] >= config.cancel_check_s:
                    last["cancel"] = now
                    self.apply_cancels(cancelled(self.client, self.output.running))
                if now - last["keepalive"] >= config.keepalive_s:
                    last["keepalive"] = now
                    self.keep_claims()
            except ResponseError as exc:
                if "NOGROUP" in str(exc):
                    # Redis lost the group (flushed, or restarted without persistence).
                    ensure_group(self.client)
                else:
                    log.error("worker %s: Redis refused a command: %s", self.queue.consumer, exc)
                    self.stop.wait(1.0)
            except RedisError as exc:
                log.warning("worker %s lost Redis (%s); retrying", self.queue.consumer, exc)
                self.stop.wait(1.0)

    def held_entry_ids(self) -> list[str]:
        """The stream entries of jobs this worker runs or has waiting."""
        return [*self.output.entry_ids(), *self.waiting.entry_ids()]

    def take_jobs(self, room: int, idle: bool) -> None:
        """Queue up to `room` jobs: first those handed to this worker, then new ones,
        less those handed on to the worker caching their conversation."""
        assigned = self.queue.take_assigned(room, set(self.held_entry_ids()))
        for entry in assigned:
            self.waiting.add(*entry)
        if len(assigned) < room:
            # No waiting for new jobs while handed ones are ready to run.
            new = self.queue.read_new(room - len(assigned), block=idle and not assigned)
            for entry in self.handover.route(new):
                self.waiting.add(*entry)

    def keep_claims(self) -> None:
        pipe = self.client.pipeline(transaction=False)
        self.queue.keep(pipe, self.held_entry_ids())
        self.output.refresh_ttls(pipe)
        pipe.execute()

    def apply_cancels(self, job_ids: set[str] | list[str]) -> None:
        for job_id in set(job_ids) & self.output.running.keys():
            self.output.publish(self.runner.cancel(job_id))

    def admit(self, entry_id: str, fields: dict[str, str]) -> None:
        job_id = fields.get("id", "")
        try:
            job = Job.from_fields(fields)
            params = SamplingParams.parse(job.sampling)
        except (KeyError, ValueError, InferenceError) as exc:
            self.queue.fail(entry_id, job_id, f"malformed job: {exc}")
            return
        # What an earlier delivery already wrote: a worker that died mid-answer leaves the
        # start of it in the output stream, and the requester has shown it.
        pipe = self.client.pipeline(transaction=False)
        pipe.xrange(output_stream(job.job_id))
        pipe.exists(cancel_key(job.job_id))
        pipe.time()
        written, is_cancelled, (seconds, micros) = pipe.execute()
        kinds = {entry_fields.get("kind") for _, entry_fields in written}
        if kinds & {"done", "error"} or is_cancelled:
            self.queue.skip(entry_id)
            return
        deltas = [entry_fields.get("text", "") for _, entry_fields in written]
        try:
            self.runner.start(
                job.job_id,
                job.messages,
                params,
                job.tools,
                job.tool_choice,
                continue_from="".join(deltas),
                already_generated=len(deltas),
            )
        except InferenceError as exc:
            self.queue.fail(entry_id, job.job_id, str(exc))
            return
        # The entry id's first part is the Redis clock at submission, in milliseconds.
        submitted_ms = int(entry_id.split("-", 1)[0])
        now_ms = int(seconds) * 1000 + int(micros) // 1000
        running = RunningJob(job.job_id, entry_id, job.affinity, max(0, now_ms - submitted_ms))
        self.output.add(running)
        self.presence.count_admitted(running.queued_ms / 1000)
