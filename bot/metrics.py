"""The bot process's Prometheus metrics, its health check and the context of a turn.

The rest of the bot reports through the one-line functions below (`begin_turn`,
`reply_outcome`, `tool_event`, `platform_call` ...), so the chat service, the delivery
layer and the platform modules carry no metrics code of their own. A turn's platform,
conversation key and start time live in context variables set by `begin_turn`: the
delivery tasks started for the turn inherit them, which is how a first visible token is
timed and labelled without passing anything along, and how every log line of the turn
carries the conversation and the platform (see `inference.logs`).

Gauges that describe shared state (the inference queue, documents stored) are read
from Redis and PostgreSQL by the status loop of `serve_status`, so any bot process
reports the same numbers, including documents added by `python -m bot docs add`.

Metric names (all `bot_` prefixed; the dashboard in deploy/grafana uses them):
  bot_replies_total{platform,outcome}         done | cancelled | failed | refused (quota,
                                              token budget)
  bot_first_token_seconds{platform}           turn start to the first text shown
  bot_reply_delivered_seconds{platform}       turn start to the final text shown
  bot_platform_calls_total{platform,method,result}   ok | retry_later | failed
  bot_tool_calls_total{tool,outcome}          ok | failed;  bot_tool_seconds{tool}
  bot_replies_in_flight, bot_inference_queue_depth, bot_inference_workers
  bot_documents, bot_document_chunks          stored in PostgreSQL (all scopes)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable
from contextvars import ContextVar
from typing import TYPE_CHECKING, TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agent_graph.events import ToolEvent
from bot.delivery.transport import RetryLater
from bot.errors import BudgetExhausted
from inference.logs import context_field
from inference.status_http import StatusServer

if TYPE_CHECKING:
    from bot.app import App

log = logging.getLogger(__name__)
T = TypeVar("T")

REGISTRY = CollectorRegistry()
_SECONDS = (0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60, 120)

REPLIES = Counter(
    "bot_replies", "Replies by platform and outcome", ["platform", "outcome"], registry=REGISTRY
)
FIRST_TOKEN = Histogram(
    "bot_first_token_seconds",
    "From the start of a turn to the first text of the answer shown on the platform",
    ["platform"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
DELIVERED = Histogram(
    "bot_reply_delivered_seconds",
    "From the start of a turn to its final text shown on the platform",
    ["platform"],
    buckets=_SECONDS,
    registry=REGISTRY,
)
PLATFORM_CALLS = Counter(
    "bot_platform_calls",
    "Platform API calls by method and result (retry_later: a 429 or a transient failure)",
    ["platform", "method", "result"],
    registry=REGISTRY,
)
TOOL_CALLS = Counter(
    "bot_tool_calls", "Tool calls by tool and outcome", ["tool", "outcome"], registry=REGISTRY
)
TOOL_SECONDS = Histogram(
    "bot_tool_seconds", "Time one tool call took", ["tool"], buckets=_SECONDS, registry=REGISTRY
)
IN_FLIGHT = Gauge(
    "bot_replies_in_flight", "Replies being written by this process", registry=REGISTRY
)
QUEUE_DEPTH = Gauge(
    "bot_inference_queue_depth", "Generation jobs no worker has taken yet", registry=REGISTRY
)
WORKERS = Gauge("bot_inference_workers", "Inference workers alive", registry=REGISTRY)
DOCUMENTS = Gauge("bot_documents", "Documents stored, all scopes", registry=REGISTRY)
CHUNKS = Gauge("bot_document_chunks", "Document chunks stored, all scopes", registry=REGISTRY)

CONVERSATION = context_field("conversation")
PLATFORM = context_field("platform")
_TURN_STARTED: ContextVar[float | None] = ContextVar("turn_started", default=None)
# Set in the delivery task of a turn once its first text was shown.
_FIRST_SHOWN: ContextVar[bool] = ContextVar("first_shown", default=False)

OUTCOMES = ("done", "cancelled", "failed", "refused")


def _create_zero_series() -> None:
    """Series that exist (at 0) from the start, so dashboards and alerts see them before
    the first event, as Prometheus's instrumentation guide advises."""
    for platform in ("discord", "telegram", "terminal"):
        FIRST_TOKEN.labels(platform)
        DELIVERED.labels(platform)
        for outcome in OUTCOMES:
            REPLIES.labels(platform, outcome)
        for method in ("send", "edit", "draft", "typing"):
            for result in ("ok", "retry_later", "failed"):
                PLATFORM_CALLS.labels(platform, method, result)
    for tool in ("calculator", "web_search", "search_documents"):
        TOOL_SECONDS.labels(tool)
        for outcome in ("ok", "failed"):
            TOOL_CALLS.labels(tool, outcome)


_create_zero_series()


def begin_turn(platform: str, conversation: str) -> None:
    """Mark the start of a turn in this context (and the tasks it starts)."""
    PLATFORM.set(platform)
    CONVERSATION.set(conversation)
    _TURN_STARTED.set(time.monotonic())


def _platform() -> str:
    return PLATFORM.get() or "unknown"


def reply_outcome(outcome: str) -> None:
    REPLIES.labels(_platform(), outcome if outcome in OUTCOMES else "failed").inc()


def count_refusal(exc: BaseException) -> None:
    """Count a request turned away by a quota other than the rate (the token budget)."""
    if isinstance(exc, BudgetExhausted):
        reply_outcome("refused")


def _since_turn_start() -> float | None:
    started = _TURN_STARTED.get()
    return None if started is None else time.monotonic() - started


def text_shown(has_text: bool) -> None:
    """A message or draft of the reply was updated; times the first one showing text."""
    if not has_text or _FIRST_SHOWN.get() or (elapsed := _since_turn_start()) is None:
        return
    _FIRST_SHOWN.set(True)
    FIRST_TOKEN.labels(_platform()).observe(elapsed)


def reply_delivered() -> None:
    if (elapsed := _since_turn_start()) is not None:
        DELIVERED.labels(_platform()).observe(elapsed)


async def platform_call(method: str, call: Awaitable[T]) -> T:
    """Await a transport call (send, edit, draft, typing), counting it by its result."""
    result = "failed"
    try:
        value = await call
        result = "ok"
        return value
    except RetryLater:
        result = "retry_later"
        raise
    finally:
        PLATFORM_CALLS.labels(_platform(), method, result).inc()


def tool_event(event: ToolEvent) -> None:
    if event.finished:
        TOOL_CALLS.labels(event.name, "ok" if event.ok else "failed").inc()
        TOOL_SECONDS.labels(event.name).observe(event.duration_s)


# -- the status server ------------------------------------------------------------------

_STATUS_INTERVAL_S = 5.0
# /healthz fails when the last successful look at Redis and PostgreSQL is older than this.
_STALE_AFTER_S = 30.0


class _Health:
    def __init__(self) -> None:
        self.checked_at = 0.0  # monotonic, of the last look that reached both services
        self.problem: str | None = "starting"

    def __call__(self) -> str | None:  # runs in the HTTP thread: reads attributes only
        if self.problem is not None:
            return self.problem
        silent = time.monotonic() - self.checked_at
        return f"no status for {silent:.0f} s" if silent > _STALE_AFTER_S else None


async def _look(app: App, health: _Health) -> None:
    """Read the shared gauges; a failure marks the process unhealthy until the next."""
    try:
        QUEUE_DEPTH.set(await app.inference.queued_jobs(10_000))
        WORKERS.set(len(await app.inference.live_workers()))
        async with app.pg_pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT (SELECT count(*) FROM documents), (SELECT count(*) FROM document_chunks)"
            )
            row = await cursor.fetchone()
        if row is not None:
            DOCUMENTS.set(row[0])
            CHUNKS.set(row[1])
        IN_FLIGHT.set(app.chat.replies_in_flight)
    except Exception as exc:  # whatever broke, the endpoint says so; the bot goes on
        health.problem = f"{type(exc).__name__}: {exc}"
        log.warning("status check failed: %s", health.problem)
        return
    health.problem, health.checked_at = None, time.monotonic()


@contextlib.asynccontextmanager
async def serve_status(app: App, port: int) -> AsyncIterator[None]:
    """Serve /metrics and /healthz on `port` while the block runs (0: serve nothing)."""
    if not port:
        yield
        return
    health = _Health()
    await _look(app, health)

    async def keep_looking() -> None:
        while True:
            await asyncio.sleep(_STATUS_INTERVAL_S)
            await _look(app, health)

    with StatusServer(REGISTRY, health, port):
        looker = asyncio.create_task(keep_looking(), name="status-loop")
        try:
            yield
        finally:
            looker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await looker
