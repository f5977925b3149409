"""Commands through Telegram: translated into the shared handler, with Telegram's roles."""

from __future__ import annotations

import pytest

from bot.platforms.telegram.config import TelegramSettings
from tests.bot.platforms.telegram.conftest import Telegram, settings_for
from tests.bot.platforms.telegram.fake_bot_api import ANONYMOUS_ADMIN, BOT_USERNAME, FakeBotApi

SET_CHANNEL = "/settings set temperature 0.3 --level channel"


@pytest.fixture
def telegram_settings(api: FakeBotApi) -> TelegramSettings:
    return settings_for(api, operators=[4242])


async def test_each_command_is_answered(telegram: Telegram) -> None:
    group = telegram.group()
    bob = telegram.person("Bob")
    expected = {
        f"/help@{BOT_USERNAME}": "Talk to me in plain text",
        "/start": "Talk to me in plain text",
        "/settings show": "temperature = ",
        "/settings set temperature 0.4": "shared by everyone here",
        "/settings reset temperature": "shared by everyone here",
        "/reset": "only admins can use /reset in a shared chat",
        "/cancel": "Nothing to cancel.",
        "/usage": "You used 0 tokens today",
        "/docs list": "No documents here yet",
        "/settings frobnicate": "usage: /settings",
        "/docs remove": "only admins can use /docs remove",
        "/docs summarize": "usage: /docs summarize TARGET",
        "/docs summarize 1 2": "too many arguments",
        "/settings show --level planet": "unknown option --level",
        "/settings set top_k 5 --level planet": "level must be one of conversation",
        "/frobnicate@" + BOT_USERNAME: "unknown command /frobnicate",
        "/stats": "only admins",
    }
    for command, answer in expected.items():
        telegram.say(group, bob, command)
        await telegram.reply_saying(group, answer)


async def test_a_member_is_refused_what_admins_may_do(telegram: Telegram) -> None:
    group = telegram.group()
    bob = telegram.person("Bob")
    telegram.say(group, bob, SET_CHANNEL)
    await telegram.reply_saying(group, "only admins can change channel settings")
    telegram.say(group, bob, "/docs remove 1")
    await telegram.reply_saying(group, "only admins can use /docs remove")

    # Both commands needed the role: Telegram was asked once, the answer remembered.
    assert len(telegram.api.calls_of("getChatMember")) == 1


@pytest.mark.parametrize("status", ["administrator", "creator"])
async def test_chat_administrators_may_change_channel_settings(
    telegram: Telegram, status: str
) -> None:
    group = telegram.group()
    alice = telegram.person("Alice")
    telegram.api.members[(group["id"], alice["id"])] = status
    telegram.say(group, alice, SET_CHANNEL)
    await telegram.reply_saying(group, "temperature: None -> 0.3 at channel level")


async def test_an_anonymous_admin_posting_as_the_group_is_an_admin(telegram: Telegram) -> None:
    group = telegram.group()
    telegram.say(group, ANONYMOUS_ADMIN, SET_CHANNEL, sender_chat=group)
    await telegram.reply_saying(group, "at channel level")
    assert telegram.api.calls_of("getChatMember") == []


async def test_a_private_chat_user_is_admin_of_their_own_chat(telegram: Telegram) -> None:
    ann = telegram.person("Ann")
    chat = telegram.private(ann)
    telegram.say(chat, ann, "/settings set temperature 0.3 --level server")
    await telegram.reply_saying(chat, "at server level")
    telegram.say(chat, ann, "/settings set temperature 0.3 --level global")
    await telegram.reply_saying(chat, "only the bot operator can change global settings")


async def test_operators_may_change_the_global_level(telegram: Telegram) -> None:
    group = telegram.group()
    operator = {"id": 4242, "is_bot": False, "first_name": "Op"}
    telegram.say(group, operator, "/settings set temperature 0.2 --level global")
    await telegram.reply_saying(group, "at global level")
