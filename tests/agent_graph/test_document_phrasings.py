"""Document questions named in more ways ("knowledge base", "reglamento", "the rules say")
go to the community's documents without any similarity measured."""

from __future__ import annotations

import pytest

from agent_graph.router_cues import EXPLICIT_DOCUMENTS
from agent_graph.tool_router import ToolRouter

TOOLS = ("calculator", "web_search", "search_documents")


@pytest.mark.parametrize(
    "message",
    [
        "Check our knowledge base: which port does the internal API use?",
        "¿Qué dice el reglamento del grupo sobre el spam?",
        "¿Cuáles son las normas del grupo sobre las fotos?",
        "What do the rules say about helmets?",
        "Is the VPN set-up in our wiki?",
        "Según el reglamento, ¿cuánto es la cuota?",
        "What do the club rules say about guests?",
        "Check the knowledge base for the backup schedule",
        "¿Qué dice la normativa sobre las bicis eléctricas?",
    ],
)
async def test_named_documents_go_to_the_documents(message: str) -> None:
    assert EXPLICIT_DOCUMENTS.search(message)
    route = await ToolRouter().route(message, TOOLS, "discord:club")
    assert (route.tool, route.reason) == ("search_documents", "explicit")


@pytest.mark.parametrize(
    "message",
    ["the rules of chess are simple", "I love rules", "what's in the news today?"],
)
def test_other_mentions_are_not_document_requests(message: str) -> None:
    assert EXPLICIT_DOCUMENTS.search(message) is None


async def test_without_documents_in_scope_no_document_search_is_made() -> None:
    route = await ToolRouter().route("What do the rules say about helmets?", TOOLS, "")
    assert route.tool != "search_documents"
