"""Several real bot processes behind one webhook URL, on one Redis, against the fake Bot
API; the test is the proxy, posting each update to one process or another.

Each update is answered once (a retried post too, to either process), a chat's updates
are answered in update_id order whichever process gets them, a post without the secret
or with a body that is not JSON is refused and changes nothing, and the updates a killed
process had recorded are answered by the other.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest
import redis.asyncio as aioredis

from storage.ordered_intake import OrderedIntake
from tests.bot.platforms.processes import ReplicaProcess
from tests.bot.platforms.telegram.fake_bot_api import (
    TOKEN,
    FakeBotApi,
    Json,
    group_chat,
    private_chat,
    user,
)

PUBLIC_URL = "https://bot.example.org/telegram/hook"
BOT_ID = TOKEN.split(":", 1)[0]
SECRET = "webhook-secret-0123"


class WebhookProcess(ReplicaProcess):
    """A bot process taking webhook posts on `url`."""

    url = ""

    async def post(
        self, http: aiohttp.ClientSession, body: Json | bytes, secret: str | None = SECRET
    ) -> int:
        headers = {} if secret is None else {"X-Telegram-Bot-Api-Secret-Token": secret}
        if isinstance(body, bytes):
            posting = http.post(self.url, data=body, headers=headers)
        else:
            posting = http.post(self.url, json=body, headers=headers)
        async with posting as response:
            return response.status


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
async def start_webhooks(
    api: FakeBotApi, redis_url: str, redis_client: aioredis.Redis
) -> AsyncIterator[Callable[..., asyncio.Future[list[WebhookProcess]]]]:
    started: list[WebhookProcess] = []

    async def start(count: int, **env: str) -> list[WebhookProcess]:
        processes = []
        for _ in range(count):
            port = _free_port()
            process = await WebhookProcess.start(
                "webhook",
                api.base_url,
                api.base_file_url,
                redis_url,
                str(port),
                WEBHOOK_URL=PUBLIC_URL,
                WEBHOOK_SECRET=SECRET,
                **env,
            )
            process.url = f"http://127.0.0.1:{port}/telegram/hook"
            processes.append(process)
        started.extend(processes)
        async with asyncio.timeout(60):
            for process in processes:
                await process.reaches("ready")
        return processes

    yield start  # type: ignore[misc]
    for process in started:
        await process.stop()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def answers(api: FakeBotApi, chat: Json) -> list[str]:
    return [sent.text for sent in api.sent_to(chat["id"])]


async def settle() -> None:
    """Let anything still pending (a second answer, were there one) happen."""
    await asyncio.sleep(1.5)


async def test_every_update_is_answered_once_whichever_process_gets_it(
    start_webhooks: Callable[..., asyncio.Future[list[WebhookProcess]]],
    api: FakeBotApi,
    http: aiohttp.ClientSession,
) -> None:
    processes = await start_webhooks(2)
    assert [call.params["url"] for call in api.calls_of("setWebhook")] == [PUBLIC_URL]
    assert api.calls_of("setWebhook")[0].params["secret_token"] == SECRET
    people = [user(6000 + n, f"P{n}") for n in range(6)]
    updates = [
        api.update(api.message(private_chat(person), person, f"question {n}"))
        for n, person in enumerate(people)
    ]
    for n, update in enumerate(updates):  # the proxy alternates
        assert await processes[n % 2].post(http, update) == 200
    for n, update in enumerate(updates):  # Telegram retries each, reaching the other one
        assert await processes[(n + 1) % 2].post(http, update) == 200
    expected = {person["id"]: f"answer to: question {n}" for n, person in enumerate(people)}
    await api.wait_for(lambda: all(answers(api, private_chat(p)) for p in people), 60)
    await settle()
    assert {p["id"]: answers(api, private_chat(p)) for p in people} == {
        chat_id: [text] for chat_id, text in expected.items()
    }

    for process in processes:  # a rolling restart: nobody removes the webhook
        await process.stop()
    await start_webhooks(1)
    assert api.calls_of("deleteWebhook") == []
    assert len(api.calls_of("setWebhook")) == 1  # registered already: not again


async def test_a_chats_updates_are_answered_in_order_across_processes(
    start_webhooks: Callable[..., asyncio.Future[list[WebhookProcess]]],
    api: FakeBotApi,
    http: aiohttp.ClientSession,
    redis_client: aioredis.Redis,
) -> None:
    first, second = await start_webhooks(2, REPLICA_TOKEN_DELAY_S="0.2")
    chat = group_chat(-100610)
    people = [user(6100 + n, f"P{n}") for n in range(1, 6)]
    updates = [
        api.update(api.message(chat, person, f"/ask q{n}"))
        for n, person in enumerate(people, start=1)
    ]
    # The chat's updates arrive out of order (Telegram posts over several connections),
    # to both processes, while its lane is held (as by a process busy with the chat).
    intake = OrderedIntake(redis_client, f"telegram:{BOT_ID}:update", lease_s=3.0)
    hold = await intake.take(str(chat["id"]))
    assert hold is not None
    for n, index in enumerate((2, 4, 3, 0, 1)):
        assert await (second if n % 2 == 0 else first).post(http, updates[index]) == 200
    await hold.release()
    # Taken in update_id order: each is queued behind the one before it (its message says
    # "waiting: ..." meanwhile, so it may be sent before the answer it waits for), then
    # answered in its message, one after the other.
    await api.wait_for(
        lambda: sum(text.startswith("answer to") for text in answers(api, chat)) >= 5, 90
    )
    await settle()
    finished = sorted(api.sent_to(chat["id"]), key=lambda sent: sent.updated_at)
    assert [sent.text for sent in finished] == [f"answer to: q{n}" for n in range(1, 6)]


async def test_a_question_does_not_hold_up_its_chat_while_answered(
    start_webhooks: Callable[..., asyncio.Future[list[WebhookProcess]]],
    api: FakeBotApi,
    http: aiohttp.ClientSession,
) -> None:
    # A long answer: the next question in the chat is taken at once and shown as queued.
    (process,) = await start_webhooks(1, REPLICA_TOKEN_DELAY_S="0.5")
    chat = group_chat(-100611)
    ann, bob = user(6111, "Ann"), user(6112, "Bob")
    long = "tell me everything about the history of the long river in many words"
    assert await process.post(http, api.update(api.message(chat, ann, f"/ask {long}"))) == 200
    await api.wait_for(lambda: any("answer to" in text for text in answers(api, chat)), 30)
    assert await process.post(http, api.update(api.message(chat, bob, "/ask short one"))) == 200
    await api.wait_for(lambda: any("queued" in text for text in answers(api, chat)), 10)
    assert not any(text == f"answer to: {long}" for text in answers(api, chat))
    await api.wait_for(lambda: "answer to: short one" in answers(api, chat), 60)
    assert answers(api, chat) == [f"answer to: {long}", "answer to: short one"]


async def test_posts_without_the_secret_or_json_are_refused_and_serving_goes_on(
    start_webhooks: Callable[..., asyncio.Future[list[WebhookProcess]]],
    api: FakeBotApi,
    http: aiohttp.ClientSession,
) -> None:
    (process,) = await start_webhooks(1)
    eve = user(6200, "Eve")
    forged = api.update(api.message(private_chat(eve), eve, "forged"))
    assert await process.post(http, forged, secret="guess") == 403
    assert await process.post(http, forged, secret=None) == 403
    assert await process.post(http, forged, secret=SECRET[:-1]) == 403
    assert await process.post(http, b"{not json") == 400
    assert await process.post(http, b"\xff\xfe") == 400
    assert await process.post(http, b'["an", "array"]') == 400

    ann = user(6201, "Ann")
    chat = private_chat(ann)
    assert await process.post(http, api.update(api.message(chat, ann, "still there?"))) == 200
    await api.wait_for(lambda: bool(answers(api, chat)), 30)
    await settle()
    assert answers(api, chat) == ["answer to: still there?"]
    assert answers(api, private_chat(eve)) == []
    assert process.process.returncode is None


async def test_updates_recorded_by_a_killed_process_are_answered_by_another(
    start_webhooks: Callable[..., asyncio.Future[list[WebhookProcess]]],
    api: FakeBotApi,
    http: aiohttp.ClientSession,
) -> None:
    (doomed,) = await start_webhooks(1, REPLICA_TOKEN_DELAY_S="0.5")
    (survivor,) = await start_webhooks(1)
    ann = user(6300, "Ann")
    chat = private_chat(ann)
    for n in range(1, 4):
        assert await doomed.post(http, api.update(api.message(chat, ann, f"q{n}"))) == 200
    # The doomed process is writing the first answer; the others wait in Redis.
    await api.wait_for(lambda: any(d.int("chat_id") == chat["id"] for d in api.drafts), 30)
    await doomed.kill()

    await api.wait_for(lambda: len(answers(api, chat)) >= 3, 60)
    await settle()
    assert answers(api, chat) == [f"answer to: q{n}" for n in range(1, 4)]
    assert survivor.process.returncode is None
