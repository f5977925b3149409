"""Several processes serving one bot's shards: two adapters ("processes": each its own
Redis connection and discord.py client) against one fake Discord with two servers on two
shards, coordinating through one Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis
from pydantic import ValidationError

from bot.coordination import Coordination
from bot.platforms.base import BotCore
from bot.platforms.discord.adapter import DiscordAdapter
from bot.platforms.discord.config import DiscordSettings
from bot.platforms.discord.shards import SharedIdentifyTurns
from tests.bot.platforms.discord.conftest import Running, settings_for, stop_all
from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import (
    BOT_ID,
    DM_ALICE,
    GENERAL,
    GUILD_ID,
    SECOND_GENERAL,
    SECOND_GUILD_ID,
)
from tests.fakes import ScriptedChatModel

# Discord's identify window is 5 s; the same rule, shorter, keeps the tests quick.
WINDOW_S = 0.5


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """Two servers, each on its own of the two shards Discord recommends; one session
    start per 5 s (here WINDOW_S) for the whole bot."""
    server = FakeDiscord(shards=2, max_concurrency=1, second_guild=True)
    await server.start()
    assert (GUILD_ID >> 22) % 2 == 0 and (SECOND_GUILD_ID >> 22) % 2 == 1
    try:
        yield server
    finally:
        await server.close()


StartProcess = Callable[..., Awaitable[Running]]


@pytest.fixture
async def start_process(
    fake: FakeDiscord, core: BotCore, redis_url: str, redis_client: aioredis.Redis
) -> AsyncIterator[StartProcess]:
    """`await start_process(**settings)`: a bot process (its own Redis connection) started;
    `await running.adapter.ready.wait()` waits until all its shards are connected."""
    running: list[Running] = []
    connections: list[aioredis.Redis] = []

    async def start(**overrides: object) -> Running:
        redis = aioredis.from_url(redis_url, decode_responses=True)
        connections.append(redis)
        process_core = dataclasses.replace(core, coordination=Coordination(redis))
        adapter = DiscordAdapter(
            process_core, settings_for(fake, **overrides), identify_window_s=WINDOW_S
        )
        stopping = asyncio.Event()
        started = Running(adapter, stopping, asyncio.create_task(adapter.run(stopping)))
        running.append(started)
        return started

    yield start
    await stop_all(running)
    for redis in connections:
        await redis.aclose()


async def connected(*processes: Running) -> None:
    """Wait until each process has all its shards connected and has registered its slash
    commands or found them registered (or re-raise why it stopped)."""
    ready = asyncio.gather(
        *(p.adapter.ready.wait() for p in processes),
        *(p.adapter.commands_checked.wait() for p in processes),
    )
    stopped = [p.task for p in processes]
    done, _ = await asyncio.wait([ready, *stopped], timeout=30, return_when="FIRST_COMPLETED")
    for task in stopped:
        if task in done:
            task.result()
    assert ready in done, "a process did not connect"


def sync_calls(fake: FakeDiscord) -> int:
    return sum(1 for call in fake.calls if call.method == "PUT" and "/commands" in call.path)


async def two_processes(start_process: StartProcess) -> tuple[Running, Running]:
    first = await start_process(shard_ids="0", shard_count=2)
    second = await start_process(shard_ids="1", shard_count=2)
    await connected(first, second)
    return first, second


async def test_each_server_is_answered_once_by_the_process_serving_its_shard(
    fake: FakeDiscord, start_process: StartProcess, model: ScriptedChatModel
) -> None:
    first, second = await two_processes(start_process)
    assert [(i["shard_id"], i["shard_count"]) for i in map(vars, fake.identified)] in (
        [(0, 2), (1, 2)],
        [(1, 2), (0, 2)],
    )
    first_client, second_client = first.adapter.client, second.adapter.client
    assert first_client is not None and second_client is not None
    assert [g.id for g in first_client.guilds] == [GUILD_ID]
    assert [g.id for g in second_client.guilds] == [SECOND_GUILD_ID]

    model.enqueue("an answer", "an answer")
    here = await fake.message(f"<@{BOT_ID}> hi", mentions_bot=True, channel=GENERAL)
    there = await fake.message(f"<@{BOT_ID}> hi", mentions_bot=True, channel=SECOND_GENERAL)
    await first.replied(fake, GENERAL)
    await second.replied(fake, SECOND_GENERAL)
    await fake.wait_for(lambda: len(fake.texts(SECOND_GENERAL)) == 1)
    assert fake.texts(GENERAL) == ["an answer"]
    assert fake.texts(SECOND_GENERAL) == ["an answer"]
    assert len(model.calls) == 2
    # Each message went to its server's shard only, and only that process saw it.
    assert ("MESSAGE_CREATE", str(here)) in [(e, i) for s, e, i in fake.delivered if s == 0]
    assert ("MESSAGE_CREATE", str(there)) in [(e, i) for s, e, i in fake.delivered if s == 1]
    assert [m.id for m in first_client.cached_messages] == [here]
    assert [m.id for m in second_client.cached_messages] == [there]


async def test_a_slash_command_in_the_second_server_is_answered_by_its_shard(
    fake: FakeDiscord, start_process: StartProcess, model: ScriptedChatModel
) -> None:
    _first, second = await two_processes(start_process)
    model.enqueue("from shard 1")
    asking = [{"name": "question", "type": 3, "value": "which shard?"}]
    token = await fake.slash("ask", asking, channel=SECOND_GENERAL)
    await fake.wait_for(lambda: "from shard 1" in " ".join(fake.interaction_texts(token)))
    await second.settled()
    assert [s for s, e, _ in fake.delivered if e == "INTERACTION_CREATE"] == [1]
    assert len(model.calls) == 1


async def test_a_dm_arrives_on_shard_zero_and_is_answered(
    fake: FakeDiscord, start_process: StartProcess, model: ScriptedChatModel
) -> None:
    first, _second = await two_processes(start_process)
    model.enqueue("a private answer")
    dm = await fake.message("hello", channel=DM_ALICE, dm=True)
    await first.replied(fake, DM_ALICE)
    assert fake.texts(DM_ALICE) == ["a private answer"]
    assert (0, "MESSAGE_CREATE", str(dm)) in fake.delivered


async def test_sessions_of_one_bucket_start_a_window_apart_across_processes(
    fake: FakeDiscord, start_process: StartProcess
) -> None:
    # max_concurrency 1: both shards share bucket 0. Each process alone would identify its
    # first shard at once (discord.py waits only between its own shards).
    await two_processes(start_process)
    first, second = sorted(i.at for i in fake.identified)
    assert second - first >= WINDOW_S


async def test_one_process_registers_the_slash_commands(
    fake: FakeDiscord, start_process: StartProcess
) -> None:
    first, _second = await two_processes(start_process)
    assert sync_calls(fake) == 1
    assert {c["name"] for c in fake.commands["global"]} >= {"ask", "docs", "settings"}
    # A restart with the same commands registers nothing again.
    await first.stop()
    restarted = await start_process(shard_ids="0", shard_count=2)
    await connected(restarted)
    assert sync_calls(fake) == 1


async def test_changed_commands_are_registered_again(
    fake: FakeDiscord, start_process: StartProcess, redis_client: aioredis.Redis
) -> None:
    # What an older version of the bot registered: another list, another digest.
    await redis_client.set(f"discord:{BOT_ID}:slash-sync:global", "digest-of-older-commands")
    process = await start_process()
    await connected(process)
    assert sync_calls(fake) == 1
    assert await redis_client.get(f"discord:{BOT_ID}:slash-sync:global") not in (
        None,
        "digest-of-older-commands",
    )


async def test_one_process_serves_every_shard_by_default(
    fake: FakeDiscord, start_process: StartProcess, model: ScriptedChatModel
) -> None:
    # No shard settings: as many shards as GET /gateway/bot recommends, all here.
    process = await start_process()
    await connected(process)
    assert sorted((i.shard_id, i.shard_count) for i in fake.identified) == [(0, 2), (1, 2)]
    model.enqueue(*itertools.repeat("answered", 2))
    await fake.message(f"<@{BOT_ID}> hi", mentions_bot=True, channel=GENERAL)
    await fake.message(f"<@{BOT_ID}> hi", mentions_bot=True, channel=SECOND_GENERAL)
    await fake.wait_for(lambda: bool(fake.texts(GENERAL)) and bool(fake.texts(SECOND_GENERAL)))
    await process.settled()
    assert fake.texts(GENERAL) == fake.texts(SECOND_GENERAL) == ["answered"]


def test_shard_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DISCORD_SHARD_IDS", "2, 3")
    monkeypatch.setenv("BOT_DISCORD_SHARD_COUNT", "4")
    settings = DiscordSettings(_env_file=None)  # type: ignore[call-arg]
    assert (settings.shard_ids, settings.shard_count) == ([2, 3], 4)


@pytest.mark.parametrize(
    ("ids", "count", "error"),
    [
        ("0,1", None, "needs BOT_DISCORD_SHARD_COUNT"),
        ("1,2", 2, r"\[2\] are outside 0..1"),
        ("1,1", 2, "lists a shard twice"),
        ("", 0, "greater than or equal to 1"),
    ],
)
def test_wrong_shard_settings_name_the_fix(ids: str, count: int | None, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        DiscordSettings.model_validate({"shard_ids": ids, "shard_count": count})


async def test_without_redis_a_shard_waits_a_whole_window_instead(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Nothing listens on port 1: every Redis call fails at once.
    unreachable = aioredis.from_url("redis://127.0.0.1:1", socket_connect_timeout=1)
    turns = SharedIdentifyTurns(unreachable, BOT_ID, 1, window_s=WINDOW_S)
    try:
        with caplog.at_level(logging.WARNING):
            await asyncio.wait_for(turns.wait_turn(0), 10)
    finally:
        await unreachable.aclose()
    assert "could not take shard 0's identify turn" in caplog.text
