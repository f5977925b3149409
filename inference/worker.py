"""The inference worker: takes jobs from the Redis Stream and streams completions back.

A worker runs `slots` threads; each owns one engine (one llama.cpp context) and serves
one job at a time, so a worker serves `slots` conversations at once. Jobs are read
through a consumer group and acknowledged only after their final chunk is written. A
slot that is generating re-claims its job every few seconds, which keeps the job's idle
time low; a job whose worker died goes idle and another worker claims it.

Run standalone with `python -m inference.worker --model PATH --slots N`, or inside the
app (`EmbeddedWorker`) when no separate pool is configured.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import RedisError, ResponseError

from inference.engine import Engine, Finish
from inference.errors import InferenceError
from inference.protocol import (
    JOBS_STREAM,
    OUTPUT_MAXLEN,
    OUTPUT_TTL_S,
    WORKER_GROUP,
    WORKER_HEARTBEAT_TTL_S,
    Chunk,
    Job,
    cancel_key,
    output_stream,
    worker_key,
)
from inference.sampling import SamplingParams

log = logging.getLogger(__name__)

EngineFactory = Callable[[], Engine]


@dataclass(frozen=True)
class WorkerConfig:
    redis_url: str
    name: str = ""
    slots: int = 1
    # A pending job idle this long belongs to a dead worker and may be claimed.
    claim_idle_ms: int = 30_000
    # Deliveries after which a job is given up on, so a poison job cannot loop forever.
    max_deliveries: int = 3
    # How often a generating slot refreshes its claim and checks for cancellation.
    keepalive_s: float = 2.0
    cancel_check_every: int = 8

    @property
    def worker_name(self) -> str:
        return self.name or f"{socket.gethostname()}-{os.getpid()}"


def ensure_group(client: redis.Redis) -> None:
    try:
        client.xgroup_create(JOBS_STREAM, WORKER_GROUP, id="0", mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise


class Worker:
    def __init__(self, config: WorkerConfig, engine_factory: EngineFactory, model_name: str):
        self.config = config
        self.engine_factory = engine_factory
        self.model_name = model_name
        self.stop_event = threading.Event()
        self.ready = threading.Barrier(config.slots + 1)
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._busy_lock = threading.Lock()
        self.startup_error: BaseException | None = None

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> None:
        """Start the slot threads and return once each has loaded its engine."""
        client = self._client()
        ensure_group(client)
        client.close()
        for index in range(self.config.slots):
            thread = threading.Thread(
                target=self._run_slot, args=(index,), name=f"worker-slot-{index}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        self.ready.wait()
        if self.startup_error is not None:
            self.stop()
            raise self.startup_error
        # Announce at once, so a client started right after sees a live pool.
        client = self._client()
        self._heartbeat(client)
        client.close()

    def stop(self) -> None:
        self.stop_event.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._threads.clear()
        with contextlib.suppress(RedisError):
            client = self._client()
            client.delete(worker_key(self.config.worker_name))
            client.close()

    def _client(self) -> redis.Redis:
        return redis.Redis.from_url(self.config.redis_url, decode_responses=True)

    # -- slots -----------------------------------------------------------------------
    def _run_slot(self, index: int) -> None:
        consumer = f"{self.config.worker_name}/{index}"
        try:
            engine = self.engine_factory()
        except BaseException as exc:  # reported to start() through startup_error
            self.startup_error = exc
            self.ready.wait()
            return
        self.ready.wait()
        client = self._client()
        last_claim_scan = 0.0
        try:
            while not self.stop_event.is_set():
                try:
                    self._heartbeat(client)
                    entry = None
                    if time.monotonic() - last_claim_scan > self.config.claim_idle_ms / 3000:
                        last_claim_scan = time.monotonic()
                        entry = self._claim_abandoned(client, consumer)
                    if entry is None:
                        entry = self._read_new(client, consumer)
                    if entry is not None:
                        self._serve(client, engine, consumer, *entry)
                except ResponseError as exc:
                    if "NOGROUP" in str(exc):
                        # Redis lost the group (flushed, or restarted without persistence).
                        ensure_group(client)
                    else:
                        log.error("worker slot %s: Redis refused a command: %s", consumer, exc)
                        self.stop_event.wait(1.0)
                except RedisError as exc:
                    log.warning("worker slot %s lost Redis (%s); retrying", consumer, exc)
                    self.stop_event.wait(1.0)
        finally:
            client.close()

    def _heartbeat(self, client: redis.Redis) -> None:
        key = worker_key(self.config.worker_name)
        with self._busy_lock:
            busy = self._busy
        client.hset(
            key,
            mapping={
                "model": self.model_name,
                "slots": self.config.slots,
                "busy": busy,
                "seen": f"{time.time():.3f}",
            },
        )
        client.expire(key, WORKER_HEARTBEAT_TTL_S)

    def _read_new(self, client: redis.Redis, consumer: str) -> tuple[str, dict[str, str]] | None:
        # redis-py's reply types are unions of every RESP shape; these are RESP2 lists.
        reply: Any = client.xreadgroup(
            WORKER_GROUP, consumer, {JOBS_STREAM: ">"}, count=1, block=1000
        )
        if not reply:
            return None
        _stream, entries = reply[0]
        entry_id, fields = entries[0]
        return str(entry_id), dict(fields)

    def _claim_abandoned(
        self, client: redis.Redis, consumer: str
    ) -> tuple[str, dict[str, str]] | None:
        """Take over one job whose worker stopped refreshing it."""
        reply: Any = client.xautoclaim(
            JOBS_STREAM, WORKER_GROUP, consumer, self.config.claim_idle_ms, "0-0", count=1
        )
        claimed = reply[1] if reply else []
        for entry_id, fields in claimed:
            if fields is None:  # deleted from the stream meanwhile
                client.xack(JOBS_STREAM, WORKER_GROUP, entry_id)
                continue
            pending: Any = client.xpending_range(
                JOBS_STREAM, WORKER_GROUP, min=entry_id, max=entry_id, count=1
            )
            deliveries = int(pending[0]["times_delivered"]) if pending else 1
            if deliveries > self.config.max_deliveries:
                job_id = dict(fields).get("id", "")
                self._finish_with_error(
                    client, entry_id, job_id, "the job failed on several workers; try again later"
                )
                continue
            log.info("claimed job %s from a worker that stopped", entry_id)
            return str(entry_id), dict(fields)
        return None

    # -- one job ---------------------------------------------------------------------
    def _serve(
        self,
        client: redis.Redis,
        engine: Engine,
        consumer: str,
        entry_id: str,
        fields: dict[str, str],
    ) -> None:
        job_id = fields.get("id", "")
        try:
            job = Job.from_fields(fields)
            params = SamplingParams.parse(job.sampling)
        except (KeyError, ValueError, InferenceError) as exc:
            self._finish_with_error(client, entry_id, job_id, f"malformed job: {exc}")
            return
        out = output_stream(job.job_id)
        # A job already finished by an earlier delivery is only acknowledged.
        last: Any = client.xrevrange(out, count=1)
        if last and last[0][1].get("kind") in ("done", "error"):
            client.xack(JOBS_STREAM, WORKER_GROUP, entry_id)
            return
        with self._busy_lock:
            self._busy += 1
        try:
            self._generate(client, engine, consumer, entry_id, job, params)
        except InferenceError as exc:
            self._finish_with_error(client, entry_id, job.job_id, str(exc))
        except Exception:
            log.exception("job %s failed", job.job_id)
            self._finish_with_error(
                client, entry_id, job.job_id, "the model failed on this request"
            )
        finally:
            with self._busy_lock:
                self._busy -= 1

    def _generate(
        self,
        client: redis.Redis,
        engine: Engine,
        consumer: str,
        entry_id: str,
        job: Job,
        params: SamplingParams,
    ) -> None:
        out = output_stream(job.job_id)
        last_keepalive = time.monotonic()
        finish = Finish(reason="stop", completion_tokens=0)
        for count, item in enumerate(engine.generate(job.messages, params), start=1):
            if isinstance(item, Finish):
                finish = item
                break
            self._write(client, out, Chunk(kind="delta", text=item.text))
            if count % self.config.cancel_check_every == 0 and client.exists(
                cancel_key(job.job_id)
            ):
                finish = Finish(reason="cancelled", completion_tokens=count)
                break
            if self.stop_event.is_set():
                # Leave the job pending: another worker (or this one, restarted) takes it.
                return
            if time.monotonic() - last_keepalive > self.config.keepalive_s:
                last_keepalive = time.monotonic()
                client.xclaim(JOBS_STREAM, WORKER_GROUP, consumer, 0, [entry_id], justid=True)
        usage = {"completion_tokens": finish.completion_tokens}
        done = Chunk(kind="done", finish_reason=finish.reason, usage=usage)
        self._write(client, out, done)
        client.xack(JOBS_STREAM, WORKER_GROUP, entry_id)

    def _write(self, client: redis.Redis, stream: str, chunk: Chunk) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.xadd(stream, chunk.to_fields(), maxlen=OUTPUT_MAXLEN, approximate=True)  # type: ignore[arg-type]
        pipe.expire(stream, OUTPUT_TTL_S)
        pipe.execute()

    def _finish_with_error(
        self, client: redis.Redis, entry_id: str, job_id: str, message: str
    ) -> None:
        if job_id:
            self._write(client, output_stream(job_id), Chunk(kind="error", text=message))
        client.xack(JOBS_STREAM, WORKER_GROUP, entry_id)


def main(argv: list[str] | None = None) -> int:
    """`python -m inference.worker`: serve jobs from the pool's Redis until interrupted."""
    import argparse
    import functools
    import signal
    from pathlib import Path

    from inference.engine import LlamaEngine
    from inference.model_files import resolve_model_path

    parser = argparse.ArgumentParser(
        prog="python -m inference.worker", description="Serve chat completions for the pool."
    )
    parser.add_argument("--model", type=Path, help="GGUF chat model (default: bundled SmolLM2)")
    parser.add_argument("--slots", type=int, default=2, help="jobs served at once (default 2)")
    parser.add_argument("--ctx-per-slot", type=int, default=4096, help="context tokens per slot")
    parser.add_argument("--gpu-layers", type=int, default=0, help="layers on the GPU; -1 = all")
    parser.add_argument("--name", default="", help="worker name (default host-pid)")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BOT_REDIS_URL", ""),
        help="the pool's Redis (default: $BOT_REDIS_URL)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("BOT_LOG_LEVEL", "INFO"))
    if not args.redis_url:
        parser.error("set --redis-url or BOT_REDIS_URL to the pool's Redis")
    if args.slots < 1:
        parser.error("--slots must be at least 1")
    try:
        model_path = resolve_model_path(args.model, setting="--model")
    except InferenceError as exc:
        parser.error(str(exc))
    factory = functools.partial(
        LlamaEngine, model_path, n_ctx=args.ctx_per_slot, gpu_layers=args.gpu_layers
    )
    config = WorkerConfig(redis_url=args.redis_url, slots=args.slots, name=args.name)
    worker = Worker(config, factory, model_name=model_path.stem)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop_event.set())
    try:
        worker.start()
    except (RedisError, InferenceError) as exc:
        print(f"worker failed to start: {exc}", file=sys.stderr)
        return 1
    log.info("worker %s serving %s with %d slots", config.worker_name, model_path, args.slots)
    with contextlib.suppress(KeyboardInterrupt):
        worker.stop_event.wait()
    worker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
