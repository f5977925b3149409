"""Events Discord sends again (a resumed session replays them; another process of the bot
saw them too) are answered once, when the adapter coordinates through Redis."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from bot.platforms.base import BotCore
from bot.platforms.discord.adapter import DiscordAdapter
from tests.bot.platforms.discord.conftest import Running, settings_for
from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import GENERAL
from tests.fakes import ScriptedChatModel


@pytest.fixture
async def coordinated(fake: FakeDiscord, coordinated_core: BotCore) -> AsyncIterator[Running]:
    adapter = DiscordAdapter(coordinated_core, settings_for(fake))
    stopping = asyncio.Event()
    running = Running(adapter, stopping, asyncio.create_task(adapter.run(stopping)))
    await fake.wait_for(lambda: len(fake.identifies) >= 1 or running.task.done())
    yield running
    with contextlib.suppress(Exception):
        await running.stop()


async def test_a_replayed_message_is_answered_once(
    fake: FakeDiscord, coordinated: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("Only answer", "Second answer")
    message_id = await fake.message("hello <@bot>", mentions_bot=True)
    await coordinated.replied(fake, GENERAL)
    await fake.replay("MESSAGE_CREATE", message_id)
    await asyncio.sleep(1.0)
    await coordinated.settled()
    assert fake.texts(GENERAL) == ["Only answer"]
    assert len(model.calls) == 1


async def test_a_replayed_slash_command_is_answered_once(
    fake: FakeDiscord, coordinated: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("Slash answer", "Second answer")
    token = await fake.slash("ask", [{"name": "question", "type": 3, "value": "once?"}])
    await fake.wait_for(lambda: "Slash answer" in " ".join(fake.interaction_texts(token)))
    await coordinated.settled()
    await fake.replay("INTERACTION_CREATE", fake.interactions[token].id)
    await asyncio.sleep(1.0)
    await coordinated.settled()
    assert len(model.calls) == 1
