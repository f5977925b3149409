"""`/docs add` with an attachment: checked before download, added with progress."""

from __future__ import annotations

from typing import Any

from tests.bot.platforms.discord.conftest import Running
from tests.bot.platforms.discord.fake_discord import FakeDiscord
from tests.bot.platforms.discord.fake_world import ALICE, BOB, BOT_ID, GENERAL
from tests.bot.platforms.discord.test_slash import answer, sub

NOTES = b"# Opening hours\n\nThe community garden opens at nine on Saturdays.\n"


def add_file(fake: FakeDiscord, filename: str, data: bytes, content_type: str) -> dict[str, Any]:
    attachment = fake.attachment(filename, data, content_type)
    return {
        "options": [
            {
                "name": "add",
                "type": 1,
                "options": [{"name": "file", "type": 11, "value": attachment["id"]}],
            }
        ],
        "resolved": {"attachments": {attachment["id"]: attachment}},
    }


def downloads(fake: FakeDiscord) -> list[str]:
    return [call.path for call in fake.calls if call.path.startswith("/attachments/")]


async def test_an_admin_adds_an_attachment(fake: FakeDiscord, bot: Running) -> None:
    upload = add_file(fake, "hours.md", NOTES, "text/markdown")
    added = await answer(fake, bot, await fake.slash("docs", **upload, author=BOB))
    assert "Added #" in added and "⚠️" not in added
    assert downloads(fake) == ["/attachments/hours.md"]
    listed = await answer(fake, bot, await fake.slash("docs", sub("list")))
    assert "Opening hours" in listed
    number = int(added.split("#")[1].split()[0])
    removing = sub("remove", document=number)
    removed = await answer(fake, bot, await fake.slash("docs", removing, author=BOB))
    assert removed.startswith(f"Removed #{number}")


async def test_uploads_are_refused_before_downloading(fake: FakeDiscord, bot: Running) -> None:
    not_admin = add_file(fake, "hours.md", NOTES, "text/markdown")
    refused = await answer(fake, bot, await fake.slash("docs", **not_admin, author=ALICE))
    assert "only admins" in refused
    program = add_file(fake, "tool.exe", b"MZ\x90\x00", "application/octet-stream")
    refused = await answer(fake, bot, await fake.slash("docs", **program, author=BOB))
    assert "can't read 'tool.exe'" in refused
    assert downloads(fake) == []


async def test_docs_add_without_file_or_url_explains_itself(
    fake: FakeDiscord, bot: Running
) -> None:
    usage = await answer(fake, bot, await fake.slash("docs", sub("add"), author=BOB))
    assert "usage: /docs" in usage


async def test_a_file_attached_to_a_docs_add_message(fake: FakeDiscord, bot: Running) -> None:
    attachment = fake.attachment("garden.md", NOTES.replace(b"nine", b"ten"), "text/markdown")
    await fake.message(
        f"<@{BOT_ID}> /docs add", author=BOB, mentions_bot=True, attachments=[attachment]
    )
    await bot.replied(fake, GENERAL)
    [added] = fake.texts(GENERAL)
    assert added.startswith("Added #")
    number = int(added.split("#")[1].split()[0])
    removing = sub("remove", document=number)
    await answer(fake, bot, await fake.slash("docs", removing, author=BOB))
