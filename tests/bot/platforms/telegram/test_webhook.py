"""Webhook mode: Telegram posts updates to the bot, which checks the secret token."""

from __future__ import annotations

import asyncio
import socket

import aiohttp

from bot.platforms.base import BotCore
from bot.platforms.telegram.adapter import TelegramAdapter
from tests.bot.platforms.telegram.conftest import FastClock, settings_for
from tests.bot.platforms.telegram.fake_bot_api import FakeBotApi, private_chat, user
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
