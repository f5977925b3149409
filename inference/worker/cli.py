"""`python -m inference.worker`: serve jobs from the pool's Redis until stopped."""

from __future__ import annotations

import argparse
import functools
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from redis.exceptions import RedisError

from inference.errors import InferenceError
from inference.logs import configure_logging
from inference.status_http import StatusServer
from inference.worker.config import DEFAULT_HOST_CACHE_MB, WorkerConfig
from inference.worker.loop import Worker

log = logging.getLogger(__name__)

# Once its parent is gone, how long a worker may take to stop cleanly (a model still
# loading cannot be interrupted) before it exits anyway.
ORPHAN_GRACE_S = 10.0


def _parser() -> argparse.ArgumentParser:
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
    return parser


def watch_parent(parent_pid: int, worker: Worker, finished: threading.Event) -> None:
    """Thread: stop the worker when `parent_pid` is no longer this process's parent, so a
    worker left behind by a dead app does not serve on, holding the app's pipes. The
    stop is graceful while serving; a worker still loading its model exits at once
    after `ORPHAN_GRACE_S`."""
    while os.getppid() == parent_pid:
        if finished.wait(0.5):
            return
    log.warning("worker %s: its parent process is gone; stopping", worker.config.worker_name)
    worker.stop_event.set()
    if not finished.wait(ORPHAN_GRACE_S):
        log.error("worker %s did not stop in time; exiting", worker.config.worker_name)
        os._exit(1)


def main(argv: list[str] | None = None) -> int:
    from inference.llama_backend import BackendConfig
    from inference.model_files import read_chat_template, resolve_model_path
    from inference.model_runner import ModelRunner

    parser = _parser()
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
    finished = threading.Event()
    if args.parent_pid:
        threading.Thread(
            target=watch_parent,
            args=(args.parent_pid, worker, finished),
            name="inference-parent-watch",
            daemon=True,
        ).start()
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
        if status is not None:
            status.close()
        finished.set()
        return 1
    log.info(
        "worker %s serving %s with %d slots", worker.config.worker_name, model_path, args.slots
    )
    while not worker.stop_event.wait(1.0):  # a timeout, so signals are handled promptly
        pass
    worker.stop()
    if status is not None:
        status.close()
    finished.set()
    return 0
