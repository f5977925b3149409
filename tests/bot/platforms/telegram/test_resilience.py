"""Whatever one chat does to the bot, it keeps serving the others, and stops cleanly."""

from __future__ import annotations

import asyncio

import pytest

from bot.chat_service import SHUTDOWN_NOTE
from bot.platforms.base import BotCore
from bot.platforms.telegram.adapter import TelegramAdapter, TelegramStartError
from tests.bot.platforms.telegram.conftest import Telegram, settings_for
from tests.bot.platforms.telegram.fake_bot_api import TOKEN, FakeBotApi
from tests.fakes import ScriptedChatModel


async def test_the_bot_removed_mid_reply_does_not_stop_it_serving_others(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    model.enqueue(" ".join(f"long{i}" for i in range(400)), "Other chat's answer")
    model.token_delay_s = 0.005
    kicked, other = telegram.group(), telegram.group()
    telegram.say(kicked, telegram.person("Bob"), "/ask tell me a long story")
    await telegram.reply_where(kicked, lambda s: "long" in s.text)

    telegram.api.kicked.add(kicked["id"])
    telegram.say(other, telegram.person("Cy"), "/ask and me?")

    await telegram.reply_saying(other, "Other chat's answer")
    assert any(c.status == 403 for c in telegram.api.calls)
    assert not telegram.task.done()


async def test_a_failing_member_lookup_counts_as_a_member(telegram: Telegram) -> None:
    group = telegram.group()
    alice = telegram.person("Alice")
    telegram.api.members[(group["id"], alice["id"])] = "administrator"
    telegram.api.fail_next("getChatMember", 1, code=500, description="Internal Server Error")
    telegram.say(group, alice, "/settings set temperature 0.3 --level channel")
    await telegram.reply_saying(group, "only admins can change channel settings")

    # Not cached: the next command asks again and finds the admin.
    telegram.say(group, alice, "/settings set temperature 0.3 --level channel")
    await telegram.reply_saying(group, "at channel level")


async def test_messages_without_text_are_ignored(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    model.enqueue("Answer to text")
    ann = telegram.person()
    chat = telegram.private(ann)
    sticker = telegram.api.message(chat, ann)
    sticker["sticker"] = {
        "file_id": "s",
        "file_unique_id": "s",
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
    }
    telegram.api.push(sticker)
    telegram.say(chat, ann, "a question")

    await telegram.reply_saying(chat, "Answer to text")
    assert len(telegram.api.sent_to(chat["id"])) == 1


async def test_stopping_mid_reply_ends_it_with_a_note(
    telegram: Telegram, core: BotCore, model: ScriptedChatModel
) -> None:
    model.enqueue(" ".join(f"part{i}" for i in range(3000)))
    model.token_delay_s = 0.01
    group = telegram.group()
    telegram.say(group, telegram.person(), "/ask write forever")
    await telegram.reply_where(group, lambda s: "part" in s.text)

    # What the runner does on SIGTERM.
    telegram.stopping.set()
    await core.chat.shutdown()
    await asyncio.wait_for(telegram.task, 30)

    (sent,) = telegram.api.sent_to(group["id"])
    assert sent.text.endswith(SHUTDOWN_NOTE)
    assert "part2999" not in sent.text


async def test_a_refused_token_stops_start_up_with_a_clear_error(
    core: BotCore, api: FakeBotApi
) -> None:
    adapter = TelegramAdapter(core, settings_for(api, token="999:wrong"))
    with pytest.raises(TelegramStartError, match="BOT_TELEGRAM_TOKEN"):
        await adapter.run(asyncio.Event())


async def test_a_server_error_mid_stream_does_not_lose_the_answer(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    answer = " ".join(f"piece{i}" for i in range(120))
    model.enqueue(answer)
    model.token_delay_s = 0.005
    telegram.api.fail_next("editMessageText", 1, code=502, description="Bad Gateway")
    group = telegram.group()
    telegram.say(group, telegram.person(), "/ask go on")

    sent = await telegram.reply_where(group, lambda s: s.text == answer)
    assert any(c.status == 502 for c in telegram.api.calls)
    assert sent.text == answer


async def test_an_unreachable_bot_api_stops_start_up_with_a_clear_error(
    core: BotCore, api: FakeBotApi
) -> None:
    closed = FakeBotApi()
    await closed.start()
    await closed.stop()  # its port now refuses connections
    adapter = TelegramAdapter(core, settings_for(api, base_url=closed.base_url))
    with pytest.raises(TelegramStartError, match="could not reach the Telegram Bot API") as err:
        await adapter.run(asyncio.Event())
    assert TOKEN not in str(err.value)  # never show the token, not even in a URL
