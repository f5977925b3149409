"""`python -m inference status`: the pool's workers, their models and load, and the queue."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from inference.client import InferenceClient
from inference.protocol import DEAD_LETTER_STREAM, JOBS_STREAM, WORKER_GROUP


async def pool_status(redis: aioredis.Redis) -> str:
    """A table of live workers, then the queue's waiting, running and dead-lettered jobs."""
    client = InferenceClient(redis)
    workers = sorted(await client.live_workers(), key=lambda worker: worker["name"])
    waiting = await client.queued_jobs(limit=10_000)
    try:
        pending: Any = await redis.xpending(JOBS_STREAM, WORKER_GROUP)
        running = int(pending["pending"])
    except RedisError:  # no queue yet
        running = 0
    dead = int(await redis.xlen(DEAD_LETTER_STREAM))
    lines = [f"{'worker':<31} {'model':<29} {'tools':<6} {'busy':>5} {'jobs':>5} {'avg s':>6} seen"]
    now = time.time()
    for worker in workers:
        busy = f"{worker.get('busy', '?')}/{worker.get('slots', '?')}"
        seen = now - float(worker.get("seen", now))
        lines.append(
            f"{worker['name'][:31]:<31} {worker.get('model', '?')[:29]:<29} "
            f"{worker.get('tool_format', '?')[:6]:<6} {busy:>5} "
            f"{worker.get('jobs_done', '0'):>5} {float(worker.get('avg_job_s', 0)):>6.2f} "
            f"{seen:>4.0f}s"
        )
    if not workers:
        lines.append("(no live workers: start one with `python -m inference.worker`)")
    lines.append(f"queue: {waiting} waiting, {running} running, {dead} dead-lettered")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    status = commands.add_parser("status", help="the pool's workers, models, load and queue")
    status.add_argument(
        "--redis-url",
        default=os.environ.get("BOT_REDIS_URL", ""),
        help="the pool's Redis (default: $BOT_REDIS_URL)",
    )
    args = parser.parse_args(argv)
    if not args.redis_url:
        parser.error("set --redis-url or BOT_REDIS_URL to the pool's Redis")

    async def run() -> str:
        redis = aioredis.from_url(args.redis_url, decode_responses=True)
        try:
            return await pool_status(redis)
        finally:
            await redis.aclose()

    try:
        print(asyncio.run(run()))
    except (RedisError, OSError) as exc:
        print(f"cannot reach the pool's Redis ({exc}); check --redis-url", file=sys.stderr)
        return 1
    return 0
