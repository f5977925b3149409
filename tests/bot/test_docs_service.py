"""The documents service behind `/docs` and `python -m bot docs`, on the real document
store, with a scripted model."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from psycopg_pool import AsyncConnectionPool

from bot.docs.service import DocsService, document_sampling, read_target
from bot.errors import InvalidRequest, PermissionDenied
from bot.scope import Role, Scope
from storage.documents import MiniLMEmbedder, PgDocumentStore, SourceDocument
from tests.fakes import ScriptedChatModel

RULES = (
    "Community rules. Be kind to each other. Links to other servers need a moderator's "
    "approval first. Spoilers go in the spoilers channel, marked as spoilers."
)


@pytest.fixture
def member() -> Scope:
    # A server of its own per test: documents are per server.
    return Scope("discord", f"g{uuid.uuid4().hex[:8]}", "c1", "alice")


@pytest.fixture
async def store(pg_pool: AsyncConnectionPool, embedder: MiniLMEmbedder) -> PgDocumentStore:
    return PgDocumentStore(pg_pool, embedder)


async def test_members_list_and_ask_with_citations(store, member) -> None:
    await store.add(member.server_key, SourceDocument("Rules", "rules.md", "text/markdown", RULES))
    model = ScriptedChatModel()
    model.enqueue("Links to other servers need a moderator's approval [1].")
    docs = DocsService(store, model)
    listed = await docs.render_list(member.server_key)
    assert "Rules" in listed and listed.startswith("Documents here:")
    answer = (await docs.ask(member.server_key, "can I post links to other servers?")).render()
    assert "moderator's approval [1]" in answer
    assert "Sources:\n[1] Rules" in answer
    # Another server sees none of it.
    other = replace(member, server_id="elsewhere")
    assert (await docs.render_list(other.server_key)).startswith("No documents here yet")


async def test_changing_documents_is_for_admins(store, member) -> None:
    docs = DocsService(store, ScriptedChatModel())
    with pytest.raises(PermissionDenied, match="only admins can add documents"):
        await docs.add(member, "https://example.org/rules")
    with pytest.raises(PermissionDenied, match="only admins can remove documents"):
        await docs.remove(member, 1)
    admin = replace(member, role=Role.ADMIN)
    with pytest.raises(PermissionDenied, match="operator"):
        await docs.add(admin, "/etc/passwd")  # a path on the bot's machine


async def test_the_operator_adds_a_file_and_an_admin_removes_it(store, member, tmp_path) -> None:
    guide = tmp_path / "guide.md"
    guide.write_text("# Guide\n\nThe weekly meeting is on Thursdays at 18:00 in the hall.\n")
    docs = DocsService(store, ScriptedChatModel())
    operator = replace(member, role=Role.OPERATOR)
    added = await docs.add(operator, str(guide))
    assert added.startswith("Added #") and "Guide" in added
    again = await docs.add(operator, str(guide))
    assert again.startswith("Already here")
    document_id = added.split("#", 1)[1].split(" ", 1)[0]
    removed = await docs.remove(replace(member, role=Role.ADMIN), int(document_id))
    assert removed.startswith(f"Removed #{document_id}")
    assert (await docs.render_list(member.server_key)).startswith("No documents here yet")


def test_one_reading_of_targets_and_one_sampling_rule() -> None:
    assert read_target("12") == 12 and read_target("#7") == 7
    assert read_target("https://example.org/a") == "https://example.org/a"
    with pytest.raises(InvalidRequest, match="neither a document's number"):
        read_target("the rules")
    assert document_sampling({"temperature": 1.4, "top_k": 5}) == {"temperature": 0.2, "top_k": 5}
    assert document_sampling({"temperature": 0.1})["temperature"] == 0.1
    assert document_sampling()["temperature"] == 0.2


async def test_uploads_are_checked_before_download_and_added_with_progress(store, member) -> None:
    docs = DocsService(store, ScriptedChatModel(), max_upload_bytes=1000)
    admin = replace(member, role=Role.ADMIN)
    with pytest.raises(PermissionDenied, match="only admins"):
        docs.check_upload(member, "notes.md", 100, None)
    with pytest.raises(InvalidRequest, match=r"can't read 'song\.mp3'"):
        docs.check_upload(admin, "song.mp3", 100, "audio/mpeg")
    with pytest.raises(InvalidRequest, match=r"limit is 0\.0 MB"):
        docs.check_upload(admin, "big.pdf", 5000, "application/pdf")
    docs.check_upload(admin, "notes", 100, "text/markdown")  # the declared type is enough
    shown: list[str] = []

    async def progress(message: str) -> None:
        shown.append(message)

    text = b"# Club notes\n\n" + b"The library opens at nine on weekdays. " * 20
    added = await docs.add_upload(admin, "notes.md", text, "text/markdown", progress)
    assert added.startswith("Added #") and "Club notes" in added
    assert shown[0] == "Reading notes.md…" and len(shown) >= 2
    assert "Club notes" in await docs.render_list(member.server_key)


async def test_a_summary_of_a_stored_document(store, member) -> None:
    await store.add(member.server_key, SourceDocument("Rules", "rules.md", "text/markdown", RULES))
    document_id = (await store.list_documents(member.server_key))[0].id
    model = ScriptedChatModel()
    model.enqueue("TITLE: House rules\nPOINTS:\n- Be kind\n- Ask before linking\nABSTRACT: Rules.")
    summary = (
        await DocsService(store, model).summarize(member.server_key, str(document_id))
    ).render()
    assert "House rules" in summary and "Be kind" in summary
    with pytest.raises(InvalidRequest, match="neither a document's number"):
        await DocsService(store, model).summarize(member.server_key, "the rules")
