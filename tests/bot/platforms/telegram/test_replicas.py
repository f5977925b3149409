"""Several bot processes on one Redis serving one Telegram bot: each update is answered
once, whatever is delivered twice; one process polls at a time and another takes over.

Each "process" here is an adapter with a core of its own (its own Redis connections,
chat service and coordination) in this test's event loop; the killed-process cases run
real processes in test_replica_processes.py.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import pytest
import redis.asyncio as aioredis
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent
from bot.chat_service import ChatService, ServiceLimits
from bot.commands import CommandHandler
from bot.coordination import Coordination
from bot.platforms.base import BotCore
from bot.platforms.telegram.adapter import TelegramAdapter
from storage.redis_conn import open_redis
from tests.bot.platforms.telegram.conftest import FastClock, settings_for
from tests.bot.platforms.telegram.fake_bot_api import FakeBotApi, Json, private_chat, user
from tests.fakes import ScriptedChatModel


@dataclass
class Replica:
    adapter: TelegramAdapter
    stopping: asyncio.Event
    task: asyncio.Task[None]

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(self.task, 30)


@pytest.fixture
async def start_replica(
    redis_url: str,
    redis_client: aioredis.Redis,
    api: FakeBotApi,
    model: ScriptedChatModel,
    limits: ServiceLimits,
) -> AsyncIterator[Callable[..., asyncio.Future[Replica]]]:
    started: list[Replica] = []
    clients: list[aioredis.Redis] = []

    async def start(**settings: object) -> Replica:
        client = await open_redis(redis_url)
        raw = aioredis.from_url(redis_url, decode_responses=False)
        clients.extend([client, raw])
        chat = ChatService.on_redis(Agent(model, AsyncRedisSaver(client=raw)), client, limits)
        core = BotCore(
            chat=chat,
            commands=CommandHandler(chat),
            coordination=Coordination(client, claim_lease_s=3.0, role_ttl_s=1.5),
        )
        adapter = TelegramAdapter(core, settings_for(api, **settings), clock=FastClock())
        stopping = asyncio.Event()
        replica = Replica(adapter, stopping, asyncio.create_task(adapter.run(stopping)))
        started.append(replica)
        ready = asyncio.ensure_future(adapter.ready.wait())
        await asyncio.wait({ready, replica.task}, timeout=30, return_when="FIRST_COMPLETED")
        ready.cancel()
        if replica.task.done():
            replica.task.result()  # start-up failed: show why
        assert adapter.ready.is_set(), "the adapter did not start"
        return replica

    yield start  # type: ignore[misc]
    for replica in started:
        if not replica.task.done():
            await replica.stop()
    for client in clients:
        await client.aclose()


def answers(api: FakeBotApi, chat: Json) -> list[str]:
    return [sent.text for sent in api.sent_to(chat["id"])]


async def settle(api: FakeBotApi, seconds: float = 1.5) -> None:
    """Let anything still pending (a second answer, were there one) happen."""
    await asyncio.sleep(seconds)


async def test_a_restart_before_the_offset_was_confirmed_answers_once(
    start_replica: Callable[..., asyncio.Future[Replica]],
    api: FakeBotApi,
    model: ScriptedChatModel,
) -> None:
    # The offset is never confirmed (as when the process stops before its next poll
    # could confirm it): the restarted process is handed the update again.
    api.confirm_offsets = False
    model.enqueue("The one answer", "A second answer")
    first = await start_replica()
    ann = user(4001, "Ann")
    chat = private_chat(ann)
    message = api.push(api.message(chat, ann, "hello once"))
    await api.wait_for(lambda: "The one answer" in answers(api, chat))
    await first.stop()
    await start_replica()
    await api.wait_for(lambda: api.deliveries.get(max(api.pushed), 0) >= 2)
    await settle(api)
    assert answers(api, chat) == ["The one answer"]
    assert [call["messages"][-1].content for call in model.calls] == [message["text"]]


async def test_a_redelivered_update_is_answered_once_by_either_process(
    start_replica: Callable[..., asyncio.Future[Replica]],
    api: FakeBotApi,
    model: ScriptedChatModel,
) -> None:
    model.enqueue("First answer", "Doubled answer")
    first = await start_replica()
    await start_replica()
    ann = user(4002, "Ann")
    chat = private_chat(ann)
    api.push(api.message(chat, ann, "answer me"))
    await api.wait_for(lambda: "First answer" in answers(api, chat))
    update_id = max(api.pushed)
    await first.stop()  # the other process polls now, and gets the update again
    api.redeliver(update_id)
    await api.wait_for(lambda: api.deliveries.get(update_id, 0) >= 2)
    await settle(api)
    assert answers(api, chat) == ["First answer"]


async def test_one_process_polls_and_a_standby_takes_over(
    start_replica: Callable[..., asyncio.Future[Replica]],
    api: FakeBotApi,
    model: ScriptedChatModel,
) -> None:
    replicas = [await start_replica() for _ in range(3)]
    await asyncio.sleep(2.0)  # several lease periods
    pollers = [r for r in replicas if r.adapter.polling]
    assert len(pollers) == 1
    assert api.conflicts == 0  # never two getUpdates at once

    model.enqueue(*(f"answer {n}" for n in range(6)))
    people = [user(4100 + n, f"P{n}") for n in range(3)]
    for person in people:
        api.push(api.message(private_chat(person), person, "question"))
    await api.wait_for(lambda: all(answers(api, private_chat(p)) for p in people))

    await pollers[0].stop()
    survivors = [r for r in replicas if r is not pollers[0]]
    await api.wait_for(lambda: any(r.adapter.polling for r in survivors), seconds=15)
    later = user(4200, "Later")
    api.push(api.message(private_chat(later), later, "still there?"))
    await api.wait_for(lambda: bool(answers(api, private_chat(later))))
    await settle(api)
    assert sum(r.adapter.polling for r in survivors) == 1
    assert api.conflicts == 0
    every_chat = [*people, later]
    assert all(len(answers(api, private_chat(p))) == 1 for p in every_chat)


async def test_two_uncoordinated_pollers_get_conflicts_and_keep_running(
    core: BotCore, api: FakeBotApi
) -> None:
    """Without a shared Redis, two processes both poll: Telegram answers 409 Conflict,
    which neither takes for a reason to stop."""
    adapters = [TelegramAdapter(core, settings_for(api), clock=FastClock()) for _ in range(2)]
    stopping = asyncio.Event()
    tasks = [asyncio.create_task(adapter.run(stopping)) for adapter in adapters]
    try:
        await api.wait_for(lambda: api.conflicts >= 1, seconds=20)
        assert not any(task.done() for task in tasks)
    finally:
        stopping.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 30)


async def test_a_webhook_update_posted_twice_is_answered_once(
    start_replica: Callable[..., asyncio.Future[Replica]],
    api: FakeBotApi,
    model: ScriptedChatModel,
) -> None:
    model.enqueue("Hooked once", "Hooked twice")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/hook"
    await start_replica(webhook_url=url, webhook_listen="127.0.0.1", webhook_port=port)
    ann = user(4300, "Ann")
    chat = private_chat(ann)
    update = api.update(api.message(chat, ann, "by webhook"))
    async with aiohttp.ClientSession() as http:
        for _ in range(2):  # Telegram retries a delivery it thinks failed
            async with http.post(url, json=update) as response:
                assert response.status == 200
    await api.wait_for(lambda: bool(answers(api, chat)))
    await settle(api)
    assert answers(api, chat) == ["Hooked once"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
