"""Who the bot answers, and where: private chats, group mentions, replies, forum topics."""

from __future__ import annotations

import logging

import pytest

from tests.bot.platforms.telegram.conftest import Telegram
from tests.bot.platforms.telegram.fake_bot_api import BOT_USERNAME, TOKEN
from tests.fakes import ScriptedChatModel


async def test_private_chat_answers_every_message_via_drafts(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    model.enqueue("Hello **there**, how can I help?")
    ann = telegram.person("Ann")
    chat = telegram.private(ann)
    telegram.say(chat, ann, "hi")

    sent = await telegram.reply_saying(chat, "how can I help?")

    assert sent.text == "Hello there, how can I help?"
    assert {"type": "bold", "offset": 6, "length": 5} in sent.entities
    commands = telegram.api.calls_of("setMyCommands")
    assert {c.params["scope"]["type"] for c in commands} == {
        "default",
        "all_chat_administrators",
        "all_private_chats",
    }
    # The history is the chat's: the model saw the question.
    assert "hi" in [m.content for m in model.calls[-1]["messages"]]


async def test_group_answers_a_mention_and_ignores_other_talk(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    model.enqueue("Mentioned answer")
    group = telegram.group()
    bob = telegram.person("Bob")
    telegram.say(group, bob, "just chatting among ourselves")
    question = telegram.say(group, bob, f"@{BOT_USERNAME} what is two plus two?")

    sent = await telegram.reply_saying(group, "Mentioned answer")

    assert len(telegram.api.sent_to(group["id"])) == 1
    assert len(model.calls) == 1
    assert model.calls[0]["messages"][-1].content == "what is two plus two?"
    first_send = telegram.api.calls_of("sendMessage")[0]
    assert first_send.params["reply_parameters"]["message_id"] == question["message_id"]
    assert sent.thread_id is None


async def test_group_answers_a_reply_to_the_bot(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    model.enqueue("First answer", "Second answer")
    group = telegram.group()
    bob = telegram.person("Bob")
    telegram.say(group, bob, "/ask first question")
    first = await telegram.reply_saying(group, "First answer")

    telegram.say(group, bob, "and a follow-up", reply_to=telegram.api.bot_message(first))

    await telegram.reply_saying(group, "Second answer")
    assert model.calls[-1]["messages"][-1].content == "and a follow-up"


async def test_commands_for_other_bots_are_ignored(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    model.enqueue("Only this one")
    group = telegram.group()
    bob = telegram.person("Bob")
    telegram.say(group, bob, "/ask@SomeOtherBot question")
    telegram.say(group, bob, "/weather tomorrow")
    telegram.say(group, bob, f"/ask@{BOT_USERNAME} the real question")

    await telegram.reply_saying(group, "Only this one")

    assert [c["messages"][-1].content for c in model.calls] == ["the real question"]


async def test_forum_topics_keep_separate_histories_and_replies_stay_in_their_topic(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    model.enqueue("Answer in topic 7", "Answer in topic 9")
    forum = telegram.group(forum=True)
    bob = telegram.person("Bob")
    telegram.say(forum, bob, "/ask remember: apples", thread_id=7)
    await telegram.reply_saying(forum, "Answer in topic 7", thread_id=7)
    telegram.say(forum, bob, "/ask what did I say?", thread_id=9)
    await telegram.reply_saying(forum, "Answer in topic 9", thread_id=9)

    # Topic 9's conversation does not contain topic 7's question.
    seen = [m.content for m in model.calls[-1]["messages"]]
    assert "what did I say?" in seen
    assert "remember: apples" not in seen
    assert all(c.int("message_thread_id") in (7, 9) for c in telegram.api.calls_of("sendMessage"))
    typing = telegram.api.calls_of("sendChatAction")
    assert {c.int("message_thread_id") for c in typing} <= {7, 9}


async def test_the_token_never_reaches_the_logs(
    telegram: Telegram, model: ScriptedChatModel, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    model.enqueue("Logged answer")
    ann = telegram.person()
    chat = telegram.private(ann)
    telegram.say(chat, ann, "hello")
    await telegram.reply_saying(chat, "Logged answer")

    assert any("sendMessage" in record.getMessage() for record in caplog.records)
    assert not [r for r in caplog.records if TOKEN in r.getMessage()]


async def test_ask_as_a_reply_asks_about_the_replied_message(
    telegram: Telegram, model: ScriptedChatModel
) -> None:
    model.enqueue("About that message")
    group = telegram.group()
    bob, cy = telegram.person("Bob"), telegram.person("Cy")
    original = telegram.say(group, bob, "Is the moon made of cheese?")
    telegram.say(group, cy, "/ask", reply_to=original)

    await telegram.reply_saying(group, "About that message")
    assert model.calls[-1]["messages"][-1].content == "Is the moon made of cheese?"
    telegram.say(group, cy, "/ask")
    await telegram.reply_saying(group, "usage: /ask QUESTION")
