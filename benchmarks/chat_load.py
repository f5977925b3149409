"""What the platform load benchmarks share: a fast scripted core whose agent time is
noted per question, and the statistics they report.

Each question gets its own scripted answer (`KeyedModel`), so concurrent conversations
cannot swap answers, and `TimedChat` notes how long the core itself took for each, so a
benchmark can report the adapter's own overhead (dispatch to final edit minus that).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langgraph_checkpoint_plainredis import AsyncRedisSaver
from pydantic import Field

from agent_graph.agent import Agent
from bot.chat_service import ChatService, ServiceLimits
from bot.commands import CommandHandler
from bot.platforms.base import BotCore
from bot.reply_sink import ReplySink
from bot.scope import Scope
from storage.embedded_redis import EmbeddedRedis
from tests.fakes import ScriptedChatModel

Result = TypeVar("Result")
RUNS = (("no 429", False), ("429 on 10% of edits", True))


async def both_runs(
    prefix: str, run_once: Callable[[str, bool], Awaitable[Result]]
) -> list[tuple[str, Result]]:
    """`run_once(redis_url, limited)` without and then with 429s injected, on a fresh
    embedded Redis; each run's label with its result."""
    rows = []
    with tempfile.TemporaryDirectory(prefix=prefix) as scratch:
        async with EmbeddedRedis(Path(scratch) / "redis") as server:
            for label, limited in RUNS:
                started = time.monotonic()
                rows.append((label, await run_once(server.url, limited)))
                print(f"{label}: {time.monotonic() - started:.1f} s", file=sys.stderr)
    return rows


class KeyedModel(ScriptedChatModel):
    """Answers each question with its own scripted answer, whatever the order of calls."""

    answers: dict[str, str] = Field(default_factory=dict)

    async def _astream(
        self, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        question = str(messages[-1].content)
        # No await between this and the parent's pop: concurrent calls cannot swap answers.
        self.replies.insert(0, self.answers.get(question, "ok"))
        async for chunk in super()._astream(messages, *args, **kwargs):
            yield chunk


class _TimedSink(ReplySink):
    """Notes when the core finishes a reply (before the delivery of its final state)."""

    def __init__(self, inner: ReplySink) -> None:
        self.inner = inner
        self.ended_at = 0.0

    async def start(self) -> None:
        await self.inner.start()

    async def append(self, text: str) -> None:
        await self.inner.append(text)

    async def tool_status(self, name: str, detail: str) -> None:
        await self.inner.tool_status(name, detail)

    async def finish(self, note: str = "") -> None:
        self.ended_at = time.monotonic()
        await self.inner.finish(note)

    async def fail(self, message: str) -> None:
        self.ended_at = time.monotonic()
        await self.inner.fail(message)

    @property
    def abandoned(self) -> bool:
        return self.inner.abandoned


class TimedChat(ChatService):
    """The chat service, noting each question's agent time (core entry to last token)."""

    agent_s: dict[str, float]
    answered: dict[str, asyncio.Event]  # set once the conversation is free again

    async def chat(self, scope: Scope, text: str, sink: ReplySink) -> None:
        timed = _TimedSink(sink)
        started = time.monotonic()
        await super().chat(scope, text, timed)
        self.agent_s[text] = timed.ended_at - started
        self.answered.setdefault(text, asyncio.Event()).set()


def timed_core(
    redis: aioredis.Redis, raw: aioredis.Redis, answers: dict[str, str], token_delay_s: float
) -> tuple[BotCore, TimedChat]:
    """A core answering each question in `answers` word by word, with quotas out of the
    way (the benchmarks measure the adapters, not the limits)."""
    model = KeyedModel(token_delay_s=token_delay_s, answers=answers)
    chat = TimedChat.on_redis(
        Agent(model, AsyncRedisSaver(client=raw)),
        redis,
        ServiceLimits(user_requests_per_minute=100_000, scope_requests_per_minute=100_000),
    )
    chat.agent_s = {}
    chat.answered = {}
    return BotCore(chat=chat, commands=CommandHandler(chat)), chat


def most_in_window(times: list[float], window_s: float) -> int:
    """The most of `times` that fall in any window of `window_s` seconds."""
    ordered = sorted(times)
    return max(
        (
            sum(1 for later in ordered[i:] if later - start < window_s)
            for i, start in enumerate(ordered)
        ),
        default=0,
    )


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))] if ordered else 0.0
