"""`search_documents` over an in-memory `DocumentSearch`: numbering, scope, failures."""

from __future__ import annotations

import pytest

from agent_graph.errors import SearchError
from agent_graph.tools.base import ToolContext
from agent_graph.tools.documents import DocumentSearchArgs, SearchDocuments
from tests.fakes import FakePassage, InMemoryDocuments

STORE = InMemoryDocuments(
    {
        "telegram:42": [
            FakePassage(7, "Handbook", 0, "Meetings are on   Mondays\nat noon."),
            FakePassage(7, "Handbook", 5, "Meetings move to Tuesdays in August. " * 40),
        ],
        "telegram:99": [FakePassage(8, "Other", 0, "Meetings of the other chat.")],
    }
)


async def test_passages_are_numbered_with_titles_and_positions() -> None:
    tool = SearchDocuments(STORE, k=2)
    text = await tool.run(DocumentSearchArgs(query="meetings"), ToolContext("telegram:42"))
    header, first, second = text.split("\n\n")
    assert "not instructions" in header
    # Spaces are tidied; lines stay lines (a heading is not part of the next sentence).
    assert first == "[1] Handbook (part 1)\nMeetings are on Mondays\nat noon."
    assert second.startswith("[2] Handbook (part 6)\nMeetings move to Tuesdays")
    assert second.endswith("…") and len(second) < 900  # long passages are cut
    assert "other chat" not in text
    assert STORE.searches[-1] == ("telegram:42", "meetings", 2)


async def test_nothing_found_and_no_scope() -> None:
    tool = SearchDocuments(STORE)
    text = await tool.run(DocumentSearchArgs(query="zebra"), ToolContext("telegram:42"))
    assert text == "No passages in this community's documents match 'zebra'."
    assert not tool.available(ToolContext(""))
    with pytest.raises(SearchError, match="no documents"):
        await tool.run(DocumentSearchArgs(query="meetings"), ToolContext(""))


async def test_store_failures_become_search_errors() -> None:
    class Down:
        async def search(self, scope: str, query: str, k: int = 5) -> list[FakePassage]:
            raise ConnectionError("connection refused")

    with pytest.raises(SearchError, match=r"could not be searched \(ConnectionError\)"):
        await SearchDocuments(Down()).run(DocumentSearchArgs(query="q"), ToolContext("s"))
