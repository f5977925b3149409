"""Real Discord bot processes on one Redis against the fake Discord, each serving one of
two shards: when one is SIGKILLed mid-reply, the other (which does not serve that shard)
takes the message over, fetching it again, and finishes or marks the cut reply."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import GENERAL, SECOND_GENERAL
from tests.bot.platforms.processes import ReplicaProcess
from tests.inference.conftest import Pool
from tests.inference.scripted_runner import ScriptedRunner

StartShards = Callable[..., asyncio.Future[tuple[ReplicaProcess, ReplicaProcess]]]


@pytest.fixture
async def sharded() -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord(shards=2, second_guild=True)
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@pytest.fixture
async def start_shards(
    sharded: FakeDiscord, redis_url: str, redis_client: aioredis.Redis
) -> AsyncIterator[StartShards]:
    """`await start_shards(**env)`: a process on shard 0 (the first server) and one on
    shard 1 (the second), both connected."""
    started: list[ReplicaProcess] = []

    async def start(**env: str) -> tuple[ReplicaProcess, ReplicaProcess]:
        for shard in ("0", "1"):
            started.append(
                await ReplicaProcess.start("discord", sharded.api_url, redis_url, shard, "2", **env)
            )
        async with asyncio.timeout(60):
            for process in started:
                await process.reaches("ready")
        return started[0], started[1]

    yield start  # type: ignore[misc]
    for process in started:
        await process.stop()


async def test_a_reply_cut_by_a_killed_process_is_finished_by_one_on_another_shard(
    start_shards: StartShards, sharded: FakeDiscord, pool: Pool
) -> None:
    _, runner = pool.scripted(runner=ScriptedRunner(default_step_s=0.2))
    first, second = await start_shards(REPLICA_MODEL="pool")
    question = "tell me a long story about a friendly dragon and a small village please"
    answer = runner.answer_to(question)
    await sharded.message(f"<@900> {question}", mentions_bot=True)
    await sharded.wait_for(lambda: any("You said" in t for t in sharded.texts(GENERAL)), 30)
    await first.kill()

    await sharded.wait_for(lambda: answer in sharded.texts(GENERAL), 60)
    await asyncio.sleep(2.0)
    assert sharded.texts(GENERAL) == [answer]  # the same message, finished
    assert len(runner.started) == 1
    assert second.process.returncode is None


async def test_a_cut_reply_that_cannot_be_finished_is_marked_and_answered_again(
    start_shards: StartShards, sharded: FakeDiscord
) -> None:
    first, second = await start_shards(REPLICA_TOKEN_DELAY_S="0.4")
    question = "cut me off on discord please"
    await sharded.message(f"<@900> {question}", mentions_bot=True)
    # Killed once the message was edited: a message is journalled after the send that
    # made it returns, and a process killed in between leaves it unrecorded.
    await sharded.wait_for(lambda: any("answer to" in t for t in sharded.texts(GENERAL)), 30)
    await first.kill()

    answer = f"answer to: {question}"
    await sharded.wait_for(lambda: answer in sharded.texts(GENERAL), 60)
    await asyncio.sleep(2.0)
    cut, again = sharded.texts(GENERAL)
    assert cut.startswith("answer") and "interrupted" in cut
    assert again == answer
    # The survivor still serves its own shard.
    await sharded.message("<@900> still there?", channel=SECOND_GENERAL, mentions_bot=True)
    await sharded.wait_for(lambda: "answer to: still there?" in sharded.texts(SECOND_GENERAL))
    assert second.process.returncode is None
