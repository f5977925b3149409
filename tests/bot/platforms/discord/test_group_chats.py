"""Server channels through Discord: shared settings for admins, questions queued, bursts
merged, replies with their context and daily token budgets, through discord.py and the
fake Discord."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from bot.chat_settings import ChatSettings
from bot.config import SamplingDefaults
from tests.bot.platforms.discord.conftest import Running, StartAdapter
from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import (
    BOB,
    BOT_ID,
    BOT_THREAD,
    CAROL,
    DM_ALICE,
    GENERAL,
)
from tests.bot.platforms.discord.test_slash import answer, sub
from tests.fakes import ScriptedChatModel, SettableClock

MENTION = f"<@{BOT_ID}>"


@pytest.fixture
def budget_clock() -> SettableClock:
    return SettableClock()


@pytest.fixture
def chat_defaults() -> ChatSettings:
    return ChatSettings.from_defaults(SamplingDefaults(burst_window_s=0.4))


async def test_who_may_change_a_conversation_by_place_and_role(
    fake: FakeDiscord, start_adapter: StartAdapter
) -> None:
    bot = await start_adapter(admin_roles="Moderators", operators="4242")
    change = sub("set", key="temperature", value="0.45")
    refused = "shared by everyone here, so only admins can change its settings"
    for channel in (GENERAL, BOT_THREAD):  # a server channel and a thread in it
        shown = await answer(fake, bot, await fake.slash("settings", change, channel=channel))
        assert refused in shown
    for admin in (BOB, CAROL):  # Manage Server; a configured admin role
        assert "at conversation level" in await answer(
            fake, bot, await fake.slash("settings", change, author=admin)
        )
    # In a DM the person owns the conversation.
    token = await fake.slash("settings", change, channel=DM_ALICE, dm=True)
    assert "at conversation level" in await answer(fake, bot, token)


async def test_a_second_question_waits_its_turn_and_is_answered(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.token_delay_s = 0.03
    model.enqueue("first " * 40, "the second answer")
    await fake.message(f"{MENTION} tell me a long story", mentions_bot=True)
    await fake.wait_for(lambda: any("first" in text for text in fake.texts(GENERAL)))
    asked = await fake.message(f"{MENTION} and my question?", author=BOB, mentions_bot=True)

    def reply_to_bob() -> dict[str, Any] | None:
        return next(
            (
                message
                for message in fake.channel_messages(GENERAL)
                if message.get("message_reference", {}).get("message_id") == str(asked)
            ),
            None,
        )

    await fake.wait_for(lambda: reply_to_bob() is not None)
    seen = reply_to_bob()
    assert seen is not None and "queued behind 1 answer" in seen["content"]
    await fake.wait_for(lambda: (reply_to_bob() or {}).get("content") == "the second answer")
    await bot.settled()
    assert [call["messages"][-1].content for call in model.calls] == [
        "tell me a long story",
        "and my question?",
    ]


async def test_three_quick_lines_get_one_answer(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("one answer")
    for line in ("hi", "a question:", "what is two and two?"):
        await fake.message(line, channel=DM_ALICE, dm=True)
        await asyncio.sleep(0.05)
    await fake.wait_for(lambda: fake.texts(DM_ALICE) == ["one answer"])
    await bot.settled()
    await asyncio.sleep(0.5)
    assert fake.texts(DM_ALICE) == ["one answer"]
    assert model.calls[0]["messages"][-1].content == "hi\na question:\nwhat is two and two?"


async def test_a_reply_brings_the_quoted_message_as_its_own_block(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    async def asked(text: str, reply_to: int | None) -> list[Any]:
        calls = len(model.calls)
        await fake.message(f"{MENTION} {text}", author=BOB, mentions_bot=True, reply_to=reply_to)
        await fake.wait_for(lambda: len(model.calls) > calls)
        await bot.settled()
        return list(model.calls[-1]["messages"][-2:])

    original = await fake.message("The meeting moved to Friday at 6.")
    block, question = await asked("is this right?", original)
    assert question.content == "is this right?" and block.name == "quoted"
    assert "> The meeting moved to Friday at 6." in block.content
    assert "from alice" in block.content
    huge = await fake.message("y" * 100_000)
    block, _ = await asked("and this?", huge)
    assert "yyy" in block.content and len(block.content) < 2000
    # A reply to a deleted message is just the question.
    gone = await fake.message("soon gone")
    fake.delete_posted(gone)
    before, question = await asked("what about it?", gone)
    assert question.content == "what about it?" and before.name != "quoted"


async def test_a_daily_budget_runs_out_and_comes_back_the_next_day(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel, budget_clock: SettableClock
) -> None:
    budget = sub("set", key="daily_tokens_person", value="50", level="server")
    assert "None -> 50" in await answer(fake, bot, await fake.slash("settings", budget, author=BOB))
    model.enqueue("a first answer")
    await fake.message(f"{MENTION} " + "a long question " * 60, mentions_bot=True)
    await fake.wait_for(lambda: "a first answer" in fake.texts(GENERAL))
    await bot.settled()
    await fake.message(f"{MENTION} another one", mentions_bot=True)
    await fake.wait_for(lambda: any("used your 50 tokens" in t for t in fake.texts(GENERAL)))
    await bot.settled()
    assert "of 50; 0 left" in await answer(fake, bot, await fake.slash("usage"))
    budget_clock.now += 24 * 3600
    model.enqueue("back again")
    await fake.message(f"{MENTION} another one", mentions_bot=True)
    await fake.wait_for(lambda: "back again" in fake.texts(GENERAL))


async def test_forged_options_get_a_clear_message(fake: FakeDiscord, bot: Running) -> None:
    out_of_range = await fake.slash("docs", sub("remove", document=-3), author=BOB)
    assert "must be a whole number from 1" in await answer(fake, bot, out_of_range)
    hot = sub("set", key="temperature", value="hot")
    wrong_value = await fake.slash("settings", hot, author=BOB)
    assert "temperature must be a number from 0.0 to 2.0" in await answer(fake, bot, wrong_value)
    unknown_key = sub("set", key="frobnicate", value="1", level="server")
    shown = await answer(fake, bot, await fake.slash("settings", unknown_key, author=BOB))
    assert "unknown setting 'frobnicate'" in shown
    bad_level = sub("set", key="top_k", value="3", level="planet")
    shown = await answer(fake, bot, await fake.slash("settings", bad_level, author=BOB))
    assert "⚠️" in shown  # refused by discord.py's choice check or the registry's
