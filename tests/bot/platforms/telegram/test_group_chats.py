"""Group chats through Telegram: shared settings for admins, questions queued, bursts
merged, replies with their context and daily token budgets, through PTB and the fake
Bot API server."""

from __future__ import annotations

import asyncio

import pytest

from bot.chat_settings import ChatSettings
from bot.config import SamplingDefaults
from bot.platforms.telegram.config import TelegramSettings
from tests.bot.platforms.telegram.conftest import Telegram, settings_for
from tests.bot.platforms.telegram.fake_bot_api import ANONYMOUS_ADMIN, BOT_USERNAME, FakeBotApi
from tests.fakes import ScriptedChatModel, SettableClock

OPERATOR_ID = 4242
SET_HERE = "/settings set temperature 0.45"


@pytest.fixture
def telegram_settings(api: FakeBotApi) -> TelegramSettings:
    return settings_for(api, operators=[OPERATOR_ID])


@pytest.fixture
def budget_clock() -> SettableClock:
    return SettableClock()


async def test_who_may_change_a_conversation_by_place_and_role(telegram: Telegram) -> None:
    group, topic_group = telegram.group(), telegram.group(forum=True)
    member, admin = telegram.person("Mia"), telegram.person("Ada")
    telegram.api.members[(group["id"], admin["id"])] = "administrator"
    operator = {"id": OPERATOR_ID, "is_bot": False, "first_name": "Op"}
    refused = "shared by everyone here, so only admins can change its settings"
    cases = [
        (group, member, {}, refused),
        (topic_group, member, {"thread_id": 77}, refused),
        (group, admin, {}, "at conversation level"),
        (group, ANONYMOUS_ADMIN, {"sender_chat": group}, "at conversation level"),
        (group, operator, {}, "at conversation level"),
    ]
    for chat, sender, extra, expected in cases:
        telegram.say(chat, sender, SET_HERE, **extra)
        await telegram.reply_saying(chat, expected, thread_id=extra.get("thread_id"))
    private = telegram.private(member)
    telegram.say(private, member, SET_HERE)
    await telegram.reply_saying(private, "at conversation level")
    # The member's refusal changed nothing for the group.
    telegram.say(group, member, "/settings show")
    shown = await telegram.reply_saying(group, "Settings here")
    assert "temperature = 0.45  (conversation)" in shown.text  # the admins' change


async def test_a_second_question_waits_its_turn_and_is_answered(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    group = telegram.group()
    ann, bob = telegram.person("Ann"), telegram.person("Bob")
    model.token_delay_s = 0.03
    model.enqueue("first " * 40, "the second answer")
    telegram.say(group, ann, f"@{BOT_USERNAME} tell me a long story")
    await telegram.reply_where(group, lambda sent: "first" in sent.text)
    telegram.say(group, bob, f"@{BOT_USERNAME} and my question?")
    queued = await telegram.reply_where(
        group, lambda sent: any("queued behind 1 answer" in text for text in sent.versions)
    )
    answered = await telegram.reply_saying(group, "the second answer")
    # The queued status is replaced by the answer in the same message.
    assert answered.message_id == queued.message_id
    assert "queued" not in answered.text
    assert [call["messages"][-1].content for call in model.calls] == [
        "tell me a long story",
        "and my question?",
    ]


@pytest.fixture
def chat_defaults() -> ChatSettings:
    return ChatSettings.from_defaults(SamplingDefaults(burst_window_s=0.4))


async def test_three_quick_lines_get_one_answer(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    ann = telegram.person("Ann")
    chat = telegram.private(ann)
    model.enqueue("one answer")
    for line in ("hi", "a question:", "what is two and two?"):
        telegram.say(chat, ann, line)
        await asyncio.sleep(0.05)
    await telegram.reply_saying(chat, "one answer")
    await asyncio.sleep(0.5)
    assert [sent.text for sent in telegram.api.sent_to(chat["id"])] == ["one answer"]
    assert model.calls[0]["messages"][-1].content == "hi\na question:\nwhat is two and two?"


async def test_a_reply_brings_the_quoted_message_as_its_own_block(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    group = telegram.group()
    ann, bob = telegram.person("Ann"), telegram.person("Bob")

    async def asked(text: str, **extra: object) -> list[str]:
        calls = len(model.calls)
        telegram.say(group, bob, f"@{BOT_USERNAME} {text}", **extra)
        await telegram.api.wait_for(lambda: len(model.calls) > calls)
        await asyncio.wait_for(telegram.adapter.in_flight.drained(), 20)
        return [message.content for message in model.calls[-1]["messages"][-2:]]

    original = telegram.say(group, ann, "The meeting moved to Friday at 6.")
    block, question = await asked("is this right?", reply_to=original)
    assert question == "is this right?"
    assert "> The meeting moved to Friday at 6." in block and "from Ann" in block
    assert model.calls[-1]["messages"][-2].name == "quoted"
    # A partial quote brings only the selected part; a 100 kB message is cut.
    long = telegram.say(group, ann, "Friday. " + "x" * 100_000)
    block, _ = await asked("sure?", reply_to=long, quote="Friday.")
    assert "part of a message" in block and "xxx" not in block
    block, _ = await asked("and this?", reply_to=long)
    assert "xxx" in block and len(block) < 2000
    # A reply to a message that is gone (Telegram sends no reply then) is just a question.
    _, question = await asked("what about now?")
    assert question == "what about now?"


async def test_a_daily_budget_runs_out_and_comes_back_the_next_day(
    telegram: Telegram, model: ScriptedChatModel, budget_clock: SettableClock
) -> None:
    group = telegram.group()
    admin, ann = telegram.person("Ada"), telegram.person("Ann")
    telegram.api.members[(group["id"], admin["id"])] = "administrator"
    telegram.say(group, admin, "/settings set daily_tokens_person 50 --level server")
    await telegram.reply_saying(group, "daily_tokens_person: None -> 50 at server level")
    model.enqueue("a first answer")
    telegram.say(group, ann, f"@{BOT_USERNAME} " + "a long question " * 60)
    await telegram.reply_saying(group, "a first answer")
    telegram.say(group, ann, f"@{BOT_USERNAME} another one")
    refused = await telegram.reply_saying(group, "used your 50 tokens for today")
    assert "resets in" in refused.text
    telegram.say(group, ann, "/usage")
    await telegram.reply_saying(group, "of 50; 0 left")
    budget_clock.now += 24 * 3600
    model.enqueue("back again")
    telegram.say(group, ann, f"@{BOT_USERNAME} another one")
    await telegram.reply_saying(group, "back again")


async def test_the_menus_come_from_the_registry(telegram: Telegram) -> None:
    menus = {
        call.params["scope"]["type"] if call.params.get("scope") else "default": call.params
        for call in telegram.api.calls_of("setMyCommands")
    }
    member = {command["command"] for command in _commands(menus["default"])}
    admins = {command["command"] for command in _commands(menus["all_chat_administrators"])}
    assert {"help", "ask", "cancel", "reset", "usage", "settings", "docs"} <= member
    assert "stats" not in member and "stats" in admins
    assert _commands(menus["all_private_chats"]) == _commands(menus["all_chat_administrators"])


def _commands(params: dict[str, object]) -> list[dict[str, str]]:
    import json

    raw = params["commands"]
    return json.loads(raw) if isinstance(raw, str) else raw  # type: ignore[return-value]
