"""Documents sent to the chat: checked before download, progress in one status message."""

from __future__ import annotations

from tests.bot.platforms.telegram.conftest import Telegram
from tests.bot.platforms.telegram.fake_bot_api import Json

NOTES = b"# Club rules\n\nMeetings are on Tuesdays at seven. Bring your own tea.\n"


def _document(file_id: str, name: str, mime: str, size: int) -> Json:
    return {
        "file_id": file_id,
        "file_unique_id": f"u-{file_id}",
        "file_name": name,
        "mime_type": mime,
        "file_size": size,
    }


def _downloads(telegram: Telegram) -> int:
    return len(telegram.api.calls_of("getFile")) + len(telegram.api.calls_of("download"))


async def test_a_document_with_the_caption_is_added_with_progress(telegram: Telegram) -> None:
    telegram.api.add_file("notes-1", NOTES)
    ann = telegram.person()
    chat = telegram.private(ann)
    document = _document("notes-1", "rules.md", "text/markdown", len(NOTES))
    telegram.api.push(telegram.api.message(chat, ann, document=document, caption="/docs add"))

    sent = await telegram.reply_saying(chat, "Added #")

    # In a private chat the progress is the reply's draft; the answer is one message.
    assert any("rules.md" in str(d.params.get("text")) for d in telegram.api.drafts)
    assert len(telegram.api.sent_to(chat["id"])) == 1
    assert sent.versions == [sent.text]
    assert telegram.api.calls_of("download")
    telegram.say(chat, ann, "/docs list")
    await telegram.reply_saying(chat, "Documents here:")


async def test_an_admin_replying_docs_add_to_a_document_adds_it(telegram: Telegram) -> None:
    telegram.api.add_file("notes-2", NOTES)
    group = telegram.group()
    bob, alice = telegram.person("Bob"), telegram.person("Alice")
    telegram.api.members[(group["id"], alice["id"])] = "administrator"
    document = _document("notes-2", "rules.txt", "text/plain", len(NOTES))
    shared = telegram.api.message(group, bob, document=document)
    telegram.api.push(shared)

    telegram.say(group, alice, "/docs add", reply_to=shared)

    sent = await telegram.reply_saying(group, "Added #")
    # In a group, one status message shows the progress and then the answer.
    assert "rules.txt" in sent.versions[0]
    assert len(telegram.api.sent_to(group["id"])) == 1


async def test_a_member_cannot_add_a_document_and_nothing_is_downloaded(
    telegram: Telegram,
) -> None:
    telegram.api.add_file("notes-3", NOTES)
    group = telegram.group()
    bob = telegram.person("Bob")
    document = _document("notes-3", "rules.md", "text/markdown", len(NOTES))
    telegram.api.push(telegram.api.message(group, bob, document=document, caption="/docs add"))

    await telegram.reply_saying(group, "only admins can add documents")
    assert _downloads(telegram) == 0


async def test_unsupported_and_oversized_files_are_refused_before_download(
    telegram: Telegram,
) -> None:
    ann = telegram.person()
    chat = telegram.private(ann)
    picture = _document("pic", "cat.png", "image/png", 1000)
    telegram.api.push(telegram.api.message(chat, ann, document=picture, caption="/docs add"))
    await telegram.reply_saying(chat, "I can't read 'cat.png'")

    huge = _document("huge", "big.pdf", "application/pdf", 25 * 1024 * 1024)
    telegram.api.push(telegram.api.message(chat, ann, document=huge, caption="/docs add"))
    await telegram.reply_saying(chat, "'big.pdf' is 25.0 MB")

    assert _downloads(telegram) == 0


async def test_a_document_without_the_caption_gets_a_hint(telegram: Telegram) -> None:
    ann = telegram.person()
    chat = telegram.private(ann)
    document = _document("n", "rules.md", "text/markdown", 10)
    telegram.api.push(telegram.api.message(chat, ann, document=document))
    await telegram.reply_saying(chat, "send it with the caption /docs add")


async def test_a_url_to_a_private_address_is_refused(telegram: Telegram) -> None:
    ann = telegram.person()
    chat = telegram.private(ann)
    telegram.say(chat, ann, "/docs add http://127.0.0.1:9/internal-notes")
    await telegram.reply_saying(chat, "127.0.0.1 is")
    assert "⚠️" in telegram.api.sent_to(chat["id"])[0].text
