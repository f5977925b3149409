"""End to end: the real model, wired by `App`, answering through the Telegram adapter."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.app import App
from bot.config import Settings
from bot.platforms.telegram.adapter import TelegramAdapter
from tests.bot.platforms.telegram.conftest import settings_for
from tests.bot.platforms.telegram.fake_bot_api import FakeBotApi, private_chat, user


@pytest.mark.model
async def test_the_real_model_answers_a_private_chat(tmp_path: Path, api: FakeBotApi) -> None:
    settings = Settings.model_validate(
        {
            "data_dir": tmp_path / "data",
            "redis_url": None,
            "database_url": None,
            "model_path": None,
            "worker_slots": 1,
            "context_size": 1024,
            "web_search": False,
            "sampling": {"max_tokens": 32},
        }
    )
    async with App(settings) as app:
        adapter = TelegramAdapter(app.core, settings_for(api))
        stopping = asyncio.Event()
        task = asyncio.create_task(adapter.run(stopping))
        try:
            await asyncio.wait_for(adapter.ready.wait(), 60)
            ann = user(777_001, "Ann")
            greeting = "Hi! Please greet me back in one short sentence."
            api.push(api.message(private_chat(ann), ann, greeting))
            await api.wait_for(lambda: bool(api.sent), 240)
            await asyncio.wait_for(adapter.in_flight.drained(), 240)
            # The pool's usage reached the daily budget: the prompt and the answer.
            used = await app.chat.budget.used(f"telegram:user:{ann['id']}", f"telegram:{ann['id']}")
            assert used.person == used.community and used.person > 20
        finally:
            stopping.set()
            await app.chat.shutdown()
            await asyncio.wait_for(task, 60)
    (answer,) = api.sent
    assert answer.text.strip()
    assert "⚠️" not in answer.text
