"""The Telegram adapter, served against a local fake Bot API server."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import pytest

from bot.platforms.base import BotCore
from bot.platforms.telegram.adapter import TelegramAdapter
from bot.platforms.telegram.config import TelegramSettings
from tests.bot.platforms.telegram.fake_bot_api import (
    TOKEN,
    FakeBotApi,
    Json,
    Sent,
    group_chat,
    private_chat,
    user,
)

_ids = itertools.count(1)


class FastClock:
    """Real time, running `speed` times faster: pacing keeps its proportions, tests their
    speed. (A clock that jumps at every sleep would let the typing loop race ahead.)"""

    def __init__(self, speed: float = 20.0) -> None:
        self.speed = speed

    def now(self) -> float:
        return time.monotonic() * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


@dataclass
class Telegram:
    """A running adapter, its fake server and helpers to talk to it."""

    api: FakeBotApi
    adapter: TelegramAdapter
    clock: FastClock
    stopping: asyncio.Event
    task: asyncio.Task[None]

    def person(self, name: str = "Ann") -> Json:
        return user(100_000 + next(_ids), name)

    def private(self, person: Json) -> Json:
        return private_chat(person)

    def group(self, *, forum: bool = False) -> Json:
        return group_chat(-1_000_000 - next(_ids), forum=forum)

    def say(self, chat: Json, sender: Json, text: str, **extra: object) -> Json:
        return self.api.push(self.api.message(chat, sender, text, **extra))  # type: ignore[arg-type]

    async def reply_where(
        self, chat: Json, condition: Callable[[Sent], bool], *, thread_id: int | None = None
    ) -> Sent:
        """Wait for a message to `chat` (and topic) that satisfies `condition`."""

        def found() -> Sent | None:
            return next((s for s in self.api.sent_to(chat["id"], thread_id) if condition(s)), None)

        try:
            await self.api.wait_for(lambda: found() is not None)
        except TimeoutError:
            shown = [s.text for s in self.api.sent_to(chat["id"], thread_id)]
            raise AssertionError(f"no such reply; the chat shows {shown}") from None
        result = found()
        assert result is not None
        return result

    async def reply_saying(self, chat: Json, text: str, *, thread_id: int | None = None) -> Sent:
        """Wait for a reply containing `text`, then for every reply to be complete."""
        sent = await self.reply_where(chat, lambda s: text in s.text, thread_id=thread_id)
        await asyncio.wait_for(self.adapter.in_flight.drained(), 20)
        return sent


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    server = FakeBotApi()
    await server.start()
    yield server
    await server.stop()


def settings_for(api: FakeBotApi, **overrides: object) -> TelegramSettings:
    values: dict[str, object] = {
        "token": TOKEN,
        "base_url": api.base_url,
        "base_file_url": api.base_file_url,
        "poll_timeout_s": 1,
        "shutdown_grace_s": 5.0,
        "operators": [],
        "webhook_url": None,
    }
    values.update(overrides)
    return TelegramSettings.model_validate(values)


@pytest.fixture
def telegram_settings(api: FakeBotApi) -> TelegramSettings:
    return settings_for(api)


@pytest.fixture
def clock_speed() -> float:
    """How much faster than real time the adapter's clock runs."""
    return 20.0


@pytest.fixture
async def telegram(
    core: BotCore, api: FakeBotApi, telegram_settings: TelegramSettings, clock_speed: float
) -> AsyncIterator[Telegram]:
    clock = FastClock(clock_speed)
    adapter = TelegramAdapter(core, telegram_settings, clock=clock)
    stopping = asyncio.Event()
    task = asyncio.create_task(adapter.run(stopping))
    running = Telegram(api, adapter, clock, stopping, task)
    ready = asyncio.ensure_future(adapter.ready.wait())
    await asyncio.wait({ready, task}, timeout=30, return_when=asyncio.FIRST_COMPLETED)
    ready.cancel()
    if task.done():
        task.result()  # start-up failed: show why
    assert adapter.ready.is_set(), "the adapter did not start"
    yield running
    stopping.set()
    await asyncio.wait_for(task, 30)
