"""End to end with the real model: the whole app behind the Discord adapter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.app import App
from bot.platforms.discord.adapter import DiscordAdapter
from tests.bot.platforms.discord.conftest import settings_for
from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import BOT_ID, GENERAL
from tests.bot.platforms.discord.test_messages import no_mentions_anywhere
from tests.test_app import settings_for as app_settings_for


@pytest.mark.model
async def test_the_real_model_answers_a_mention(
    fake: FakeDiscord, tmp_path: Path, backend_settings: dict[str, object]
) -> None:
    settings = app_settings_for(tmp_path / "data", sampling={"max_tokens": 24}, **backend_settings)
    async with App(settings) as app:
        adapter = DiscordAdapter(app.core, settings_for(fake))
        stopping = asyncio.Event()
        running = asyncio.create_task(adapter.run(stopping))
        await fake.wait_for(lambda: bool(fake.identifies), within_s=60)
        await fake.message(f"<@{BOT_ID}> What is the capital of France?", mentions_bot=True)
        await fake.wait_for(lambda: bool(fake.channel_messages(GENERAL)), within_s=120)
        await asyncio.wait_for(adapter.in_flight.drained(), 120)
        [reply] = fake.texts(GENERAL)
        assert reply.strip() and "⚠️" not in reply
        assert no_mentions_anywhere(fake)
        stopping.set()
        await asyncio.wait_for(running, timeout=30)
