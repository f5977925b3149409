"""Slash commands through the real discord.py client and a fake Discord."""

from __future__ import annotations

from typing import Any

from tests.bot.platforms.discord.conftest import Running, StartAdapter
from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import ALICE, BOB, CAROL, DM_ALICE, GUILD_ID
from tests.bot.platforms.discord.test_messages import no_mentions_anywhere
from tests.fakes import ScriptedChatModel


def sub(name: str, **options: Any) -> list[dict[str, Any]]:
    """A subcommand with its options, as Discord sends them."""
    kinds = {str: 3, int: 4, bool: 5}
    values = [
        {"name": key, "type": kinds[type(value)], "value": value} for key, value in options.items()
    ]
    return [{"name": name, "type": 1, "options": values}]


async def answer(fake: FakeDiscord, bot: Running, token: str) -> str:
    """The whole text the interaction ended up showing."""
    await fake.wait_for(lambda: any(fake.interaction_texts(token)))
    await bot.settled()
    return "\n".join(fake.interaction_texts(token))


async def test_commands_are_synced_at_start(fake: FakeDiscord, bot: Running) -> None:
    await fake.wait_for(lambda: "global" in fake.commands)  # beside connecting
    commands = {command["name"]: command for command in fake.commands["global"]}
    assert set(commands) == {
        "ask",
        "reset",
        "cancel",
        "help",
        "usage",
        "stats",
        "docs",
        "settings",
        "transcribe",
    }
    clip = commands["transcribe"]["options"][0]
    assert (clip["name"], clip["type"], clip["required"]) == ("clip", 11, False)  # attachment
    assert int(commands["stats"]["default_member_permissions"]) == 1 << 5  # Manage Server
    settings = {option["name"]: option for option in commands["settings"]["options"]}
    key = next(option for option in settings["set"]["options"] if option["name"] == "key")
    assert key["autocomplete"] is True
    level = next(option for option in settings["set"]["options"] if option["name"] == "level")
    assert [choice["value"] for choice in level["choices"]] == [
        "conversation",
        "channel",
        "server",
        "global",
    ]


async def test_commands_go_to_one_server_when_configured(
    fake: FakeDiscord, start_adapter: StartAdapter
) -> None:
    await start_adapter(guild_id=GUILD_ID)
    await fake.wait_for(lambda: str(GUILD_ID) in fake.commands)
    assert "global" not in fake.commands
    assert {command["name"] for command in fake.commands[str(GUILD_ID)]} >= {"ask", "docs"}


async def test_ask_is_deferred_then_answered(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("The answer is 42")
    token = await fake.slash("ask", [{"name": "question", "type": 3, "value": "why?"}])
    assert await answer(fake, bot, token) == "The answer is 42"
    callbacks = fake.interactions[token].callbacks
    assert [callback["type"] for callback in callbacks] == [5]  # deferred, "thinking…"
    assert model.calls[-1]["messages"][-1].content == "why?"
    assert no_mentions_anywhere(fake)


async def test_help_reset_and_docs_list(fake: FakeDiscord, bot: Running) -> None:
    assert "/settings" in await answer(fake, bot, await fake.slash("help"))
    assert "Forgotten" in await answer(fake, bot, await fake.slash("reset", author=BOB))
    listed = await answer(fake, bot, await fake.slash("docs", sub("list")))
    # The document store outlives a test: other tests' documents may be listed.
    assert listed.startswith(("No documents here yet", "Documents here:"))


async def test_settings_set_show_and_reset(fake: FakeDiscord, bot: Running) -> None:
    change = sub("set", key="temperature", value="0.3")
    changed = await answer(fake, bot, await fake.slash("settings", change, author=BOB))
    assert "temperature" in changed and "0.3" in changed and "conversation" in changed
    shown = await answer(fake, bot, await fake.slash("settings", sub("show")))
    assert "temperature = 0.3" in shown
    reset = sub("reset", key="temperature")
    await answer(fake, bot, await fake.slash("settings", reset, author=BOB))
    shown = await answer(fake, bot, await fake.slash("settings", sub("show")))
    assert "temperature = 0.3" not in shown


async def test_a_member_cannot_change_a_shared_channel(fake: FakeDiscord, bot: Running) -> None:
    change = sub("set", key="max_tokens", value="4000")
    refused = await answer(fake, bot, await fake.slash("settings", change, author=ALICE))
    assert "shared by everyone here" in refused and "admin" in refused
    reset = await answer(fake, bot, await fake.slash("reset", author=ALICE))
    assert "only admins can use /reset in a shared chat" in reset
    shown = await answer(fake, bot, await fake.slash("settings", sub("show")))
    assert "max_tokens = 4000" not in shown


async def test_server_settings_are_for_admins(
    fake: FakeDiscord, start_adapter: StartAdapter
) -> None:
    bot = await start_adapter(admin_roles="Moderators")
    change = sub("set", key="top_k", value="12", level="server")
    refused = await answer(fake, bot, await fake.slash("settings", change, author=ALICE))
    assert "admin" in refused.lower() and "⚠️" in refused
    # Manage Server (bob's role), or a configured admin role (carol's).
    assert "12" in await answer(fake, bot, await fake.slash("settings", change, author=BOB))
    assert "12" in await answer(fake, bot, await fake.slash("settings", change, author=CAROL))


async def test_admin_commands_are_refused_to_others(fake: FakeDiscord, bot: Running) -> None:
    removed = await answer(fake, bot, await fake.slash("docs", sub("remove", document=1)))
    assert "only admins" in removed
    stats = await answer(fake, bot, await fake.slash("stats"))
    assert "admins" in stats


async def test_setting_keys_are_autocompleted_with_their_ranges(
    fake: FakeDiscord, bot: Running
) -> None:
    typing_key = [
        {
            "name": "set",
            "type": 1,
            "options": [{"name": "key", "type": 3, "value": "temp", "focused": True}],
        }
    ]
    token = await fake.slash("settings", typing_key, autocomplete=True)
    await fake.wait_for(lambda: bool(fake.interactions[token].callbacks))
    [callback] = fake.interactions[token].callbacks
    assert callback["type"] == 8
    assert callback["data"]["choices"] == [
        {"name": "temperature: a number from 0.0 to 2.0", "value": "temperature"}
    ]


async def test_cancel_stops_the_answer_being_written(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.token_delay_s = 0.05
    model.enqueue(" ".join(f"word{index}" for index in range(400)))
    asking = await fake.slash("ask", [{"name": "question", "type": 3, "value": "go on"}])
    await fake.wait_for(lambda: "word1" in "".join(fake.interaction_texts(asking)))
    cancelling = await fake.slash("cancel")
    await fake.wait_for(lambda: "Stopping" in "".join(fake.interaction_texts(cancelling)))
    await bot.settled()
    stopped = "\n".join(fake.interaction_texts(asking))
    assert stopped.endswith("_(stopped by /cancel)_")
    assert "word399" not in stopped


async def test_docs_ask_and_summarize_reach_the_documents(fake: FakeDiscord, bot: Running) -> None:
    asked = await answer(
        fake, bot, await fake.slash("docs", sub("ask", question="when does it open?"))
    )
    assert "documents here don't contain" in asked
    missing = await answer(fake, bot, await fake.slash("docs", sub("summarize", target="999999")))
    assert "no document #999999" in missing


async def test_a_refused_url_is_explained(fake: FakeDiscord, bot: Running) -> None:
    refused = await answer(
        fake, bot, await fake.slash("docs", sub("add", url="file:///etc/passwd"), author=BOB)
    )
    assert "only http and https URLs" in refused


async def test_stats_for_an_admin(fake: FakeDiscord, bot: Running) -> None:
    # Past the role check: this test core has no statistics to show.
    shown = await answer(fake, bot, await fake.slash("stats", author=BOB))
    assert "not available" in shown


async def test_slash_commands_in_a_dm(
    fake: FakeDiscord, bot: Running, model: ScriptedChatModel
) -> None:
    model.enqueue("Hello in private")
    asking = [{"name": "question", "type": 3, "value": "hi"}]
    token = await fake.slash("ask", asking, channel=DM_ALICE, dm=True)
    assert await answer(fake, bot, token) == "Hello in private"
    # A DM is the user's own server, but only their conversation is theirs to change.
    server_wide = sub("set", key="top_k", value="5", level="server")
    token = await fake.slash("settings", server_wide, channel=DM_ALICE, dm=True)
    refused = await answer(fake, bot, token)
    assert "⚠️" in refused and "admin" in refused.lower()
