"""Messages addressed to the bot, through the real discord.py client and a fake Discord."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.bot.platforms.discord.conftest import Running, StartAdapter
from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import (
    BOT_ID,
    BOT_THREAD,
    DM_ALICE,
    GENERAL,
    OTHER,
    OTHER_BOT,
    USER_THREAD,
)
from tests.fakes import ScriptedChatModel


def pings_nobody(allowed: dict[str, Any]) -> bool:
    return (
        allowed["parse"] == []
        and not allowed.get("users")
        and not allowed.get("roles")
        and not allowed.get("replied_user")
    )


def no_mentions_anywhere(fake: FakeDiscord) -> bool:
    """Every message sent or edited said "ping nobody"."""
    calls = fake.message_calls()
    return bool(calls) and all(pings_nobody(call.body["allowed_mentions"]) for call in calls)


async def test_mention_is_answered_in_a_reply(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("Hello from the bot")
    asked = await fake.message(f"<@{BOT_ID}> hi there", mentions_bot=True)
    await fake.wait_for(lambda: fake.texts(GENERAL) == ["Hello from the bot"])
    [reply] = fake.channel_messages(GENERAL)
    assert reply["message_reference"]["message_id"] == str(asked)
    # The model saw the question without the mention.
    assert model.calls[-1]["messages"][-1].content == "hi there"
    assert no_mentions_anywhere(fake)


async def test_a_dm_is_answered(fake: FakeDiscord, bot: Running, model: ScriptedChatModel) -> None:
    model.enqueue("Hi in private")
    await fake.message("hello", channel=DM_ALICE, dm=True)
    await fake.wait_for(lambda: fake.texts(DM_ALICE) == ["Hi in private"])


async def test_a_reply_to_the_bot_needs_no_mention(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("First answer", "Second answer")
    await fake.message(f"<@{BOT_ID}> one", mentions_bot=True)
    await fake.wait_for(lambda: fake.texts(GENERAL) == ["First answer"])
    await bot.settled()
    [first] = fake.channel_messages(GENERAL)
    await fake.message("and another thing", reply_to=int(first["id"]))
    await fake.wait_for(lambda: fake.texts(GENERAL) == ["First answer", "Second answer"])


async def test_threads_the_bot_started_are_answered_others_need_a_mention(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("In my thread")
    await fake.message("no mention needed here", channel=BOT_THREAD)
    await fake.wait_for(lambda: fake.texts(BOT_THREAD) == ["In my thread"])
    await bot.settled()
    model.enqueue("In yours")
    await fake.message("not for the bot", channel=USER_THREAD)
    await fake.message(f"<@{BOT_ID}> now it is", channel=USER_THREAD, mentions_bot=True)
    await fake.wait_for(lambda: fake.texts(USER_THREAD) == ["In yours"])
    # One answer only: the unaddressed message was not answered (nor given the reply).
    assert len(fake.channel_messages(USER_THREAD)) == 1


async def _only_the_control_is_answered(
    fake: FakeDiscord, model: ScriptedChatModel, ignored: Callable[[], Any], channel: int
) -> None:
    """Send an event that must be ignored, then one that must be answered: events are
    handled in order, so once the second is answered the first would have been too."""
    model.enqueue("the control's answer")
    await ignored()
    control = await fake.message(f"<@{BOT_ID}> control", channel=channel, mentions_bot=True)
    await fake.wait_for(lambda: "the control's answer" in fake.texts(channel))
    replies = fake.channel_messages(channel)
    assert [reply["message_reference"]["message_id"] for reply in replies] == [str(control)]


async def test_unaddressed_messages_are_ignored(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    await _only_the_control_is_answered(fake, model, lambda: fake.message("just chatting"), GENERAL)


async def test_other_bots_are_ignored(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    await _only_the_control_is_answered(
        fake,
        model,
        lambda: fake.message(f"<@{BOT_ID}> hi", author=OTHER_BOT, mentions_bot=True),
        GENERAL,
    )


async def test_channels_off_the_allow_list_are_ignored(
    fake: FakeDiscord, start_adapter: StartAdapter, model: ScriptedChatModel
) -> None:
    await start_adapter(channels=str(OTHER))
    await _only_the_control_is_answered(
        fake,
        model,
        lambda: fake.message(f"<@{BOT_ID}> hi", channel=GENERAL, mentions_bot=True),
        OTHER,
    )


async def test_everyone_in_a_reply_pings_nobody(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("Hey @everyone and @here, look at <@501> and <@&110>")
    await fake.message(f"<@{BOT_ID}> ping them", mentions_bot=True)
    await fake.wait_for(
        lambda: fake.texts(GENERAL) == ["Hey @everyone and @here, look at <@501> and <@&110>"]
    )
    assert no_mentions_anywhere(fake)


async def test_a_command_in_a_mention(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    await fake.message(f"<@{BOT_ID}> /help", mentions_bot=True)
    await fake.wait_for(lambda: any("/settings" in text for text in fake.texts(GENERAL)))
    assert model.calls == []


async def test_a_long_message_is_answered(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("Read it all")
    question = "word " * 800  # 4,000 characters, as Nitro members may send
    await fake.message(f"<@{BOT_ID}> {question}", mentions_bot=True)
    await fake.wait_for(lambda: fake.texts(GENERAL) == ["Read it all"])
    assert model.calls[-1]["messages"][-1].content == question.strip()
