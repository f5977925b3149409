"""Webhook mode: Telegram posts updates to the bot, which checks the secret token."""

from __future__ import annotations

import asyncio
import socket

import aiohttp
import redis.asyncio as aioredis
from telegram import Bot

from bot.platforms.base import BotCore
from bot.platforms.telegram.adapter import TelegramAdapter
from bot.platforms.telegram.config import TelegramSettings
from bot.platforms.telegram.webhook import register_webhook
from tests.bot.platforms.telegram.conftest import FastClock, settings_for
from tests.bot.platforms.telegram.fake_bot_api import TOKEN, FakeBotApi, private_chat, user
from tests.fakes import ScriptedChatModel

SECRET = "s3cret-token"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_webhook_updates_with_the_secret_are_served(
    core: BotCore, api: FakeBotApi, model: ScriptedChatModel
) -> None:
    model.enqueue("Hooked answer")
    port = _free_port()
    url = f"http://127.0.0.1:{port}/telegram-hook"
    settings = settings_for(
        api,
        webhook_url=url,
        webhook_listen="127.0.0.1",
        webhook_port=port,
        webhook_secret=SECRET,
    )
    adapter = TelegramAdapter(core, settings, clock=FastClock())
    stopping = asyncio.Event()
    task = asyncio.create_task(adapter.run(stopping))
    try:
        await asyncio.wait_for(adapter.ready.wait(), 20)
        (registered,) = api.calls_of("setWebhook")
        assert registered.params["url"] == url
        assert registered.params["secret_token"] == SECRET
        ann = user(5150, "Ann")
        chat = private_chat(ann)
        async with aiohttp.ClientSession() as http:
            forged = api.update(api.message(chat, ann, "forged"))
            wrong = {"X-Telegram-Bot-Api-Secret-Token": "guess"}
            async with http.post(url, json=forged, headers=wrong) as response:
                assert response.status == 403
            update = api.update(api.message(chat, ann, "hello by webhook"))
            right = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
            async with http.post(url, json=update, headers=right) as response:
                assert response.status == 200

        await api.wait_for(lambda: any(s.text == "Hooked answer" for s in api.sent))
        assert [c["messages"][-1].content for c in model.calls] == ["hello by webhook"]
    finally:
        stopping.set()
        await asyncio.wait_for(task, 30)


async def test_the_webhook_is_registered_once_and_again_only_when_it_changed(
    api: FakeBotApi, redis_client: aioredis.Redis, other_process: aioredis.Redis
) -> None:
    url = "https://bot.example.org/hook"
    settings = settings_for(api, webhook_url=url, webhook_secret=SECRET)
    key = "telegram:777:webhook"
    async with Bot(TOKEN, base_url=api.base_url) as bot:

        async def register(client: aioredis.Redis, chosen: TelegramSettings) -> bool:
            return await register_webhook(bot, client, key, chosen, registering_s=0.2)

        # Two processes starting together: one registers.
        assert [
            await register(redis_client, settings),
            await register(other_process, settings),
        ] == [
            True,
            False,
        ]
        await asyncio.sleep(0.3)
        assert not await register(other_process, settings)  # a restart: registered already
        rotated = settings_for(api, webhook_url=url, webhook_secret="rotated-secret")
        assert await register(other_process, rotated)
        await asyncio.sleep(0.3)
        api.webhook_url = ""  # removed meanwhile (long polling was used)
        assert await register(redis_client, rotated)
    registered = api.calls_of("setWebhook")
    assert [call.params["secret_token"] for call in registered] == [
        SECRET,
        "rotated-secret",
        "rotated-secret",
    ]
    assert all(call.params["url"] == url for call in registered)
    assert api.calls_of("deleteWebhook") == []
