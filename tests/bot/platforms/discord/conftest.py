"""The Discord adapter running the real discord.py client against a local fake Discord."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from pydantic import SecretStr

from bot.platforms.base import BotCore
from bot.platforms.discord.adapter import DiscordAdapter
from bot.platforms.discord.config import DiscordSettings
from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import TOKEN


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@dataclass
class Running:
    adapter: DiscordAdapter
    stopping: asyncio.Event
    task: asyncio.Task[None]

    async def settled(self) -> None:
        """Wait until every reply in flight is complete (its conversation free again)."""
        await asyncio.wait_for(self.adapter.in_flight.drained(), 60)

    async def replied(self, fake: FakeDiscord, channel: int) -> None:
        """Wait until the bot has answered in `channel` and finished doing so."""
        await fake.wait_for(lambda: bool(fake.channel_messages(channel)))
        await self.settled()

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(self.task, timeout=30)


async def stop_all(running: list[Running]) -> None:
    """Stop the adapters still running at a test's end (whatever a test left broken)."""
    for started in running:
        if not started.task.done():
            with contextlib.suppress(Exception):
                await started.stop()


def settings_for(fake: FakeDiscord, **overrides: object) -> DiscordSettings:
    return DiscordSettings.model_validate(
        {"token": SecretStr(TOKEN), "api_url": fake.api_url, **overrides}
    )


StartAdapter = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_adapter(fake: FakeDiscord, core: BotCore) -> AsyncIterator[StartAdapter]:
    """`await start_adapter(**settings)`: the adapter connected to `fake` (READY and the
    server received)."""
    running: list[Running] = []

    async def start(**overrides: object) -> Running:
        adapter = DiscordAdapter(core, settings_for(fake, **overrides))
        stopping = asyncio.Event()
        task = asyncio.create_task(adapter.run(stopping))
        started = Running(adapter, stopping, task)
        running.append(started)
        identified = len(fake.identifies) + 1
        await fake.wait_for(lambda: len(fake.identifies) >= identified or task.done())
        if task.done():
            task.result()
        # The bot reads the READY and GUILD_CREATE sent right after IDENTIFY before any
        # event a test sends later: the gateway is one ordered stream.
        return started

    yield start
    await stop_all(running)


@pytest.fixture
async def bot(start_adapter: StartAdapter) -> Running:
    return await start_adapter()
