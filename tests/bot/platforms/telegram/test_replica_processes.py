"""Real bot processes on one Redis against the fake Bot API: one polls at a time, and when
it is SIGKILLed a standby takes polling over and answers what comes next."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
import redis.asyncio as aioredis

from tests.bot.platforms.processes import ReplicaProcess
from tests.bot.platforms.telegram.fake_bot_api import (
    FakeBotApi,
    Json,
    group_chat,
    private_chat,
    user,
)
from tests.inference.conftest import Pool
from tests.inference.scripted_runner import ScriptedRunner


@pytest.fixture
async def start_process(
    api: FakeBotApi, redis_url: str, redis_client: aioredis.Redis
) -> AsyncIterator[Callable[..., asyncio.Future[ReplicaProcess]]]:
    started: list[ReplicaProcess] = []

    async def start(**env: str) -> ReplicaProcess:
        replica = await ReplicaProcess.start(
            "telegram", api.base_url, api.base_file_url, redis_url, **env
        )
        started.append(replica)
        return replica

    yield start  # type: ignore[misc]
    for replica in started:
        await replica.stop()


async def _owner_and_standby(
    replicas: list[ReplicaProcess],
) -> tuple[ReplicaProcess, ReplicaProcess]:
    waits = [asyncio.ensure_future(r.reaches("polling")) for r in replicas]
    await asyncio.wait(waits, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    for waiting in waits:
        waiting.cancel()
    (owner,) = [r for r in replicas if r.state == "polling"]
    (standby,) = [r for r in replicas if r is not owner]
    return owner, standby


def _texts(api: FakeBotApi, chat: Json) -> list[str]:
    return [s.text for s in api.sent_to(chat["id"])]


async def test_a_standby_takes_polling_over_from_a_killed_owner(
    start_process: Callable[..., asyncio.Future[ReplicaProcess]], api: FakeBotApi
) -> None:
    replicas = [await start_process() for _ in range(2)]
    owner, standby = await _owner_and_standby(replicas)
    await asyncio.sleep(1.0)
    assert standby.state == "standby"  # one poller at a time

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
    owner, other = await _owner_and_standby(replicas)

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


async def test_a_reply_cut_by_a_killed_process_is_finished_in_the_same_message(
    start_process: Callable[..., asyncio.Future[ReplicaProcess]], api: FakeBotApi, pool: Pool
) -> None:
    # The pool's worker runs apart from the bot processes and goes on writing when the
    # process that asked is killed: the process taking the question over re-attaches.
    _, runner = pool.scripted(runner=ScriptedRunner(default_step_s=0.2))
    replicas = [await start_process(REPLICA_MODEL="pool") for _ in range(2)]
    owner, other = await _owner_and_standby(replicas)
    group = group_chat(-100501)
    ann = user(5005, "Ann")
    question = "tell me a long story about a friendly dragon and a small village please"
    answer = runner.answer_to(question)
    api.push(api.message(group, ann, f"/ask {question}"))
    await api.wait_for(lambda: any("You said" in text for text in _texts(api, group)), 30)
    await owner.kill()

    await api.wait_for(lambda: answer in _texts(api, group), 60)
    await asyncio.sleep(2.0)
    assert _texts(api, group) == [answer]  # the cut message itself, finished; nothing else
    assert len(runner.started) == 1  # the answer was not generated again
    assert other.process.returncode is None


async def test_a_cut_reply_that_cannot_be_finished_is_marked_and_answered_again(
    start_process: Callable[..., asyncio.Future[ReplicaProcess]], api: FakeBotApi
) -> None:
    # The scripted model runs inside the killed process: nothing can finish its reply.
    slow = {"REPLICA_TOKEN_DELAY_S": "0.4"}
    replicas = [await start_process(**slow) for _ in range(2)]
    owner, other = await _owner_and_standby(replicas)
    group = group_chat(-100502)
    ann = user(5006, "Ann")
    question = "cut me off in a group please"
    api.push(api.message(group, ann, f"/ask {question}"))
    await api.wait_for(lambda: any("answer to" in text for text in _texts(api, group)), 30)
    await owner.kill()

    answer = f"answer to: {question}"
    await api.wait_for(lambda: answer in _texts(api, group), 60)
    await asyncio.sleep(2.0)
    cut, again = _texts(api, group)
    assert cut.startswith("answer") and cut != answer
    assert "interrupted" in cut  # not left looking finished
    assert again == answer
    assert other.process.returncode is None


async def test_a_question_cut_by_a_restart_is_answered_after_it(
    start_process: Callable[..., asyncio.Future[ReplicaProcess]], api: FakeBotApi
) -> None:
    first = await start_process(REPLICA_TOKEN_DELAY_S="0.4")
    await first.reaches("polling")
    group = group_chat(-100503)
    ann = user(5007, "Ann")
    question = "answer me across a restart with a long answer of many words"
    api.push(api.message(group, ann, f"/ask {question}"))
    await api.wait_for(lambda: any("answer to" in text for text in _texts(api, group)), 30)
    await first.stop()  # SIGTERM: the reply ends with a note saying it is answered again
    (cut,) = _texts(api, group)
    assert "answered again once it is back" in cut

    second = await start_process(REPLICA_TOKEN_DELAY_S="0.02")
    answer = f"answer to: {question}"
    await api.wait_for(lambda: answer in _texts(api, group), 60)
    await asyncio.sleep(1.0)
    assert _texts(api, group) == [cut, answer]
    assert second.process.returncode is None
