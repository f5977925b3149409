"""Connecting, resuming, intents and stopping, against a fake Discord."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.chat_service import SHUTDOWN_NOTE
from bot.platforms.base import BotCore
from bot.platforms.discord.adapter import NO_CONTENT_NOTE, DiscordAdapter
from bot.platforms.runner import run_adapters
from tests.bot.platforms.discord.conftest import Running, StartAdapter, settings_for
from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import BOT_ID, GENERAL
from tests.fakes import ScriptedChatModel

GUILDS, GUILD_MESSAGES, DIRECT_MESSAGES, MESSAGE_CONTENT = 1 << 0, 1 << 9, 1 << 12, 1 << 15


async def test_the_gateway_address_is_asked_of_the_api(fake: FakeDiscord, bot: Running) -> None:
    # discord.py alone would connect to wss://gateway.discord.gg: it found the fake's
    # gateway only by asking the configured API.
    assert "/gateway/bot" in [call.path for call in fake.calls]
    [identify] = fake.identifies
    assert identify["token"] == "fake-bot-token"
    assert identify["intents"] == GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT


async def test_without_message_content_it_says_so(
    fake: FakeDiscord, start_adapter: StartAdapter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await start_adapter(message_content=False)
    assert fake.identifies[-1]["intents"] == GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES
    assert NO_CONTENT_NOTE in caplog.text


async def test_a_dropped_gateway_resumes_and_misses_nothing(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    await fake.drop_gateway()
    model.enqueue("after the drop")
    # Sent while the bot may be disconnected: Discord replays it on RESUME.
    await fake.message(f"<@{BOT_ID}> are you there?", mentions_bot=True)
    await fake.wait_for(lambda: fake.texts(GENERAL) == ["after the drop"])
    assert len(fake.identifies) == 1
    [resume] = fake.resumes
    assert resume["session_id"] == "session-1"


async def test_a_stop_ends_the_reply_in_flight_with_a_note(
    fake: FakeDiscord, core: BotCore, model: ScriptedChatModel
) -> None:
    model.token_delay_s = 0.05
    model.enqueue(" ".join(f"w{index}" for index in range(400)))
    adapter = DiscordAdapter(core, settings_for(fake))
    stopping = asyncio.Event()
    serving = asyncio.create_task(run_adapters([adapter], core, stopping))
    await fake.wait_for(lambda: bool(fake.identifies))
    await fake.message(f"<@{BOT_ID}> go", mentions_bot=True)
    await fake.wait_for(lambda: "w1" in "".join(fake.texts(GENERAL)))
    stopping.set()  # as SIGTERM does
    assert await asyncio.wait_for(serving, timeout=30) == 0
    [reply] = fake.texts(GENERAL)
    assert reply.endswith(f"_{SHUTDOWN_NOTE}_") and "w399" not in reply


async def test_stopping_lets_replies_in_flight_finish(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.token_delay_s = 0.01
    answer = " ".join(f"w{index}" for index in range(100))
    model.enqueue(answer)
    await fake.message(f"<@{BOT_ID}> go", mentions_bot=True)
    await fake.wait_for(lambda: bool(fake.channel_messages(GENERAL)))
    await bot.stop()
    assert fake.texts(GENERAL) == [answer]


async def test_a_refused_privileged_intent_names_the_fix(
    fake: FakeDiscord, start_adapter: StartAdapter
) -> None:
    fake.message_content_enabled = False
    running = await start_adapter()
    with pytest.raises(ValueError, match="BOT_DISCORD_MESSAGE_CONTENT=false"):
        await asyncio.wait_for(running.task, timeout=30)
