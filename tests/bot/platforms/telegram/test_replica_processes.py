"""Real bot processes on one Redis against the fake Bot API: one polls at a time, and when
it is SIGKILLed a standby takes polling over and answers what comes next."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.bot.platforms.telegram.fake_bot_api import FakeBotApi, private_chat, user

REPO = Path(__file__).resolve().parents[4]


class ReplicaProcess:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.state = "starting"
        self.changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.state = line.decode().strip()
            self.changed.set()

    async def reaches(self, *states: str) -> str:
        """Wait until the process reports one of `states`."""
        while self.state not in states:
            self.changed.clear()
            await self.changed.wait()
        return self.state

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self._reader


@pytest.fixture
async def start_process(
    api: FakeBotApi, redis_url: str, redis_client: aioredis.Redis
) -> AsyncIterator[Callable[..., asyncio.Future[ReplicaProcess]]]:
    started: list[ReplicaProcess] = []

    async def start(**env: str) -> ReplicaProcess:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bot.platforms.telegram.replica_process",
            api.base_url,
            api.base_file_url,
            redis_url,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO), **env},
            cwd=REPO,
        )
        replica = ReplicaProcess(process)
        started.append(replica)
        return replica

    yield start  # type: ignore[misc]
    for replica in started:
        await replica.stop()


async def test_a_standby_takes_polling_over_from_a_killed_owner(
    start_process: Callable[..., asyncio.Future[ReplicaProcess]], api: FakeBotApi
) -> None:
    replicas = [await start_process() for _ in range(2)]
    waits = [asyncio.ensure_future(r.reaches("polling")) for r in replicas]
    await asyncio.wait(waits, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    for waiting in waits:
        waiting.cancel()
    await asyncio.sleep(1.0)  # the other stays a standby
    (owner,) = [r for r in replicas if r.state == "polling"]
    (standby,) = [r for r in replicas if r is not owner]

    ann = user(5001, "Ann")
    api.push(api.message(private_chat(ann), ann, "first question"))
    await api.wait_for(lambda: any("answer to: first question" in s.text for s in api.sent), 30)

    await owner.kill()
    # The owner's lease (3 s here) runs out and the standby takes polling over.
    async with asyncio.timeout(20):
        await standby.reaches("polling")
    bob = user(5002, "Bob")
    api.push(api.message(private_chat(bob), bob, "second question"))
    await api.wait_for(lambda: any("answer to: second question" in s.text for s in api.sent), 30)
    await asyncio.sleep(1.0)
    assert [s.text for s in api.sent_to(bob["id"])] == ["answer to: second question"]
    assert [s.text for s in api.sent_to(ann["id"])] == ["answer to: first question"]
    assert standby.process.returncode is None  # no crash, 409s or not


async def test_a_question_whose_process_was_killed_mid_answer_is_answered_by_another(
    start_process: Callable[..., asyncio.Future[ReplicaProcess]], api: FakeBotApi
) -> None:
    slow = {"REPLICA_TOKEN_DELAY_S": "0.5"}  # five words: over two seconds of answer
    replicas = [await start_process(**slow) for _ in range(2)]
    waits = [asyncio.ensure_future(r.reaches("polling")) for r in replicas]
    await asyncio.wait(waits, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    for waiting in waits:
        waiting.cancel()
    (owner,) = [r for r in replicas if r.state == "polling"]
    (other,) = [r for r in replicas if r is not owner]

    ann = user(5003, "Ann")
    chat = private_chat(ann)
    api.push(api.message(chat, ann, "cut me off"))
    # The owner has the update (and confirmed it with its next poll) and is writing.
    await api.wait_for(lambda: any(d.int("chat_id") == chat["id"] for d in api.drafts), 30)
    await owner.kill()

    await api.wait_for(lambda: bool(api.sent_to(chat["id"])), 60)
    await asyncio.sleep(2.0)
    assert [s.text for s in api.sent_to(chat["id"])] == ["answer to: cut me off"]
    assert other.process.returncode is None
