"""The `tool_routing` modes through a whole agent turn: the router chooses and the agent
calls (`router`), the model chooses (`model`), or no tools (`off`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from langchain_core.messages import ToolMessage
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent, TurnSettings
from agent_graph.errors import SearchError
from agent_graph.fixed_answers import say
from agent_graph.graph import ToolRouting
from agent_graph.tool_router import ToolRouter
from agent_graph.tools.web_search import SearchResult
from storage.documents import MiniLMEmbedder
from tests.agent_graph.test_tool_router import HANDBOOK, SCOPE, EmbeddedDocuments
from tests.agent_graph.turns import run
from tests.fakes import ScriptedChatModel, tool_call

ALL = ("calculator", "web_search", "search_documents")


def turn(mode: ToolRouting = "router", tools: tuple[str, ...] = ALL) -> TurnSettings:
    return TurnSettings("Be brief.", {}, tools=tools, document_scope=SCOPE, tool_routing=mode)


class Search:
    name = "local"

    def __init__(self, failure: str = "") -> None:
        self.failure = failure
        self.queries: list[str] = []

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        self.queries.append(query)
        if self.failure:
            raise SearchError(self.failure)
        return [SearchResult("Chile", "https://news.example/cl", "The president is X.")]


@pytest.fixture
async def saver(redis_client: aioredis.Redis, redis_url: str) -> AsyncIterator[Any]:
    client = aioredis.from_url(redis_url, decode_responses=False)
    yield AsyncRedisSaver(client=client)
    await client.aclose()


@pytest.fixture
def documents(embedder: MiniLMEmbedder) -> EmbeddedDocuments:
    return EmbeddedDocuments(embedder, {SCOPE: HANDBOOK})


def agent(
    model: ScriptedChatModel,
    saver: Any,
    embedder: MiniLMEmbedder,
    documents: EmbeddedDocuments,
    search: Search | None = None,
) -> Agent:
    return Agent(model, saver, search_backend=search, document_search=documents, embedder=embedder)


async def test_the_router_searches_the_web_and_the_model_answers_from_it(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    model, search = ScriptedChatModel(), Search()
    model.enqueue("The president of Chile is X [1].")
    answer, events = await run(
        agent(model, saver, embedder, documents, search),
        "Who is the current president of Chile?",
        turn(),
    )
    # The model's answer, then what the search found, in its own words.
    assert (
        answer
        == "The president of Chile is X [1].\n\nSources:\n[1] Chile <https://news.example/cl>"
    )
    assert search.queries == ["Who is the current president of Chile?"]
    start = events[0]
    assert start.name == "web_search" and start.detail.startswith("searching the web: Who is")
    [answering] = model.calls
    assert "tools" not in answering["kwargs"]  # no chance to skip the result it was handed
    result = answering["messages"][-1]
    assert isinstance(result, ToolMessage) and "https://news.example/cl" in result.text
    assert "Web search results" in answering["messages"][0].text


async def test_a_tool_call_written_as_text_never_reaches_the_person(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    model, search = ScriptedChatModel(), Search()
    model.enqueue('{"name": "web_search", "arguments": {"query": "president of Chile"}}')
    answer, _ = await run(
        agent(model, saver, embedder, documents, search),
        "Who is the current president of Chile?",
        turn(),
    )
    assert "{" not in answer and '"name"' not in answer
    assert answer == (
        "The web search found:\n[1] Chile <https://news.example/cl>\n   The president is X."
    )


async def test_without_web_search_the_answer_says_so(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    model = ScriptedChatModel()
    answer, events = await run(
        agent(model, saver, embedder, documents), "Who won the Tour de France today?", turn()
    )
    assert answer == say("web_off", "Who won the Tour de France today?")
    assert answer.startswith("I can't search the web here")
    assert events == [] and model.calls == []
    spanish = await run(
        agent(model, saver, embedder, documents), "¿Quién ganó el partido de hoy?", turn()
    )
    assert spanish[0].startswith("Aquí no puedo buscar en la web")
    assert model.calls == []


async def test_without_web_search_general_knowledge_goes_to_the_model(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    question = "What is the capital of France?"
    route = await ToolRouter(embedder).route(question, ALL, SCOPE)
    assert (route.tool, route.reason) == ("web_search", "classifier")  # the web could answer
    model = ScriptedChatModel()
    model.enqueue("Paris.")
    answer, events = await run(agent(model, saver, embedder, documents), question, turn())
    # Not a question about the present: without web search, the model answers it.
    assert answer == "Paris." and events == []


async def test_a_general_question_is_answered_from_memory_when_the_search_fails(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    model, search = ScriptedChatModel(), Search(failure="DuckDuckGo could not be reached")
    model.enqueue("Paris.")
    question = "What is the capital of France?"
    answer, events = await run(agent(model, saver, embedder, documents, search), question, turn())
    assert search.queries == [question]  # the search was tried, and shown
    assert [event.name for event in events][:1] == ["web_search"]
    assert answer == (
        "(I couldn't search the web (DuckDuckGo could not be reached); this is from what I "
        "know, unchecked.)\n\nParis."
    )
    [answering] = model.calls
    assert "tools" not in answering["kwargs"]
    assert not any(isinstance(m, ToolMessage) for m in answering["messages"])


async def test_a_failed_search_is_reported_not_invented(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    model, search = ScriptedChatModel(), Search(failure="the network is unreachable")
    answer, events = await run(
        agent(model, saver, embedder, documents, search),
        "What's the weather in Lima today?",
        turn(),
    )
    assert answer.startswith("I couldn't search the web (the network is unreachable)")
    assert [(e.name, e.ok) for e in events if e.finished] == [("web_search", False)]
    assert model.calls == []


async def test_a_document_question_without_the_word_documents_is_answered_from_them(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    model = ScriptedChatModel()
    model.enqueue("Seven days [1].")
    answer, events = await run(
        agent(model, saver, embedder, documents), "How long can I keep a tool I borrowed?", turn()
    )
    # The passage's own sentence (and the next) follows the model's supported words.
    assert answer == (
        "Seven days [1].\n\nFrom the documents:\n"
        "> Members may borrow the shared tools for up to seven days. "
        "Sign them out in the tool book at the workshop entrance. [1]"
    )
    assert events[0].detail.startswith("reading the documents: How long")
    assert documents.scopes[-1] == SCOPE
    result = model.calls[0]["messages"][-1]
    assert isinstance(result, ToolMessage) and "seven days" in result.text


async def test_a_chain_in_words_is_answered_whole_by_the_calculator(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    model = ScriptedChatModel()
    answer, _ = await run(
        agent(model, saver, embedder, documents), "divide 144 by 12 and add 5", turn()
    )
    assert answer == "144 / 12 + 5 = 17"
    assert model.calls == []


async def test_no_tool_needed_means_no_tool_offered_or_run(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    model = ScriptedChatModel()
    # Even a model that writes a call when offered none gets no tool run.
    model.enqueue(tool_call("calculator", "Hello!", expression="1 + 1"))
    answer, events = await run(
        agent(model, saver, embedder, documents), "Hi there, how are you?", turn()
    )
    assert answer == "Hello!"
    assert events == []
    assert "tools" not in model.calls[0]["kwargs"]


async def test_model_mode_offers_the_tools_to_the_model(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    model, search = ScriptedChatModel(), Search()
    model.enqueue("I think it is X.")
    answer, events = await run(
        agent(model, saver, embedder, documents, search),
        "Who is the current president of Chile?",
        turn("model"),
    )
    assert answer == "I think it is X." and events == [] and search.queries == []
    assert model.offered_tools(0) == ["calculator", "web_search", "search_documents"]
    # The router's choice is offered as a hint, which the model may ignore (as here).
    assert "needs the web_search tool" in model.calls[0]["messages"][0].text
    model.enqueue("Hello!")
    await run(agent(model, saver, embedder, documents, search), "Hi there!", turn("model"))
    assert "A quick check suggests" not in model.calls[-1]["messages"][0].text


async def test_off_mode_uses_no_tools(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    model = ScriptedChatModel()
    model.enqueue("42")
    answer, events = await run(
        agent(model, saver, embedder, documents), "what is 6 * 7?", turn("off")
    )
    assert answer == "42" and events == []
    assert "tools" not in model.calls[0]["kwargs"]


async def test_a_document_search_that_finds_nothing_says_so(
    saver: Any, embedder: MiniLMEmbedder
) -> None:
    model = ScriptedChatModel()
    empty = EmbeddedDocuments(embedder, {})
    answer, events = await run(
        agent(model, saver, embedder, empty), "What do our rules say about pets?", turn()
    )
    assert answer == "This community's documents don't say anything about that."
    assert [e.name for e in events if e.finished] == ["search_documents"]
    assert model.calls == []


async def test_when_the_model_fails_the_passages_still_answer(
    saver: Any, embedder: MiniLMEmbedder, documents: EmbeddedDocuments
) -> None:
    model = ScriptedChatModel()
    model.enqueue(RuntimeError("the worker crashed"))
    answer, _ = await run(
        agent(model, saver, embedder, documents), "How long can I keep a tool I borrowed?", turn()
    )
    assert answer == (
        "The documents say:\n> Members may borrow the shared tools for up to seven days. "
        "Sign them out in the tool book at the workshop entrance. [1]"
    )
