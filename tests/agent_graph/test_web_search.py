"""Web search backends against a local HTTP server (never the internet).

SearxNG: its JSON API shape. DuckDuckGo: the `ddgs` engine's real HTTP client and HTML
parsing, pointed at a page shaped like html.duckduckgo.com's that the test serves.
Timeouts, refusals and garbage must all come back as `SearchError`s whose text says
what happened.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from agent_graph.errors import SearchError
from agent_graph.tools.base import ToolContext
from agent_graph.tools.duckduckgo import DuckDuckGoBackend
from agent_graph.tools.searxng import SearxngBackend
from agent_graph.tools.web_search import SearchResult, WebSearch, WebSearchArgs
from tests.agent_graph.conftest import LocalServer

SEARXNG_ANSWER = {
    "query": "llama.cpp batching",
    "results": [
        {
            "title": "Continuous batching",
            "url": "https://llama.example/batching",
            "content": "How llama.cpp   serves\nmany slots.",
            "engine": "x",
        },
        {"title": "Slots", "url": "https://llama.example/slots", "content": "n_parallel"},
        {"title": "Third", "url": "https://llama.example/3", "content": "more"},
    ],
}

DDG_PAGE = """<html><body><div id="links" class="results">
<div class="result results_links results_links_deep web-result">
 <div class="links_main links_deep result__body">
  <h2 class="result__title"><a class="result__a" href="https://llama.example/batching">
   Continuous batching in <b>llama.cpp</b></a></h2>
  <a class="result__snippet" href="https://llama.example/batching">How llama.cpp serves
   <b>many</b> slots at once.</a>
 </div></div>
<div class="result results_links web-result">
 <div class="links_main result__body">
  <h2 class="result__title"><a class="result__a" href="https://duckduckgo.com/y.js?ad=1">Ad</a></h2>
  <a class="result__snippet" href="https://duckduckgo.com/y.js?ad=1">An advert.</a>
 </div></div>
<div class="result results_links web-result">
 <div class="links_main result__body">
  <h2 class="result__title"><a class="result__a" href="https://llama.example/slots">Slots</a></h2>
  <a class="result__snippet" href="https://llama.example/slots">n_parallel explained.</a>
 </div></div>
</div></body></html>"""


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    # trust_env=False: a proxy configured on the machine must not see local requests.
    async with httpx.AsyncClient(trust_env=False) as http:
        yield http


# -- SearxNG -------------------------------------------------------------------------------


async def test_searxng_results_carry_title_url_snippet(
    http_server: LocalServer, client: httpx.AsyncClient
) -> None:
    http_server.route("/search", body=json.dumps(SEARXNG_ANSWER))
    backend = SearxngBackend(http_server.url + "/", client=client)
    results = await backend.search("llama.cpp batching", max_results=2)
    assert results == [
        SearchResult(
            "Continuous batching",
            "https://llama.example/batching",
            SEARXNG_ANSWER["results"][0]["content"],
        ),  # type: ignore[index]
        SearchResult("Slots", "https://llama.example/slots", "n_parallel"),
    ]
    method, path, query = http_server.requests[0]
    assert (method, path) == ("GET", "/search")
    assert query == {"q": ["llama.cpp batching"], "format": ["json"]}


async def test_searxng_timeout_is_a_search_error(
    http_server: LocalServer, client: httpx.AsyncClient
) -> None:
    http_server.route("/search", body=json.dumps(SEARXNG_ANSWER), delay_s=2.0)
    backend = SearxngBackend(http_server.url, timeout_s=0.2, client=client)
    with pytest.raises(SearchError, match=r"did not answer within 0.2 s"):
        await backend.search("anything", 5)


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        (403, "Forbidden", "enable `json` under search.formats"),
        (500, "oops", "HTTP 500"),
        (200, "<html>not json</html>", "not JSON"),
        (200, json.dumps({"answers": []}), "no result list"),
        (200, json.dumps({"results": ["just a string"]}), "malformed result"),
        (200, json.dumps({"results": [{"title": 5, "url": "u", "content": "c"}]}), "malformed"),
    ],
)
async def test_searxng_refusals_and_garbage_are_search_errors(
    http_server: LocalServer, client: httpx.AsyncClient, status: int, body: str, message: str
) -> None:
    http_server.route("/search", status=status, body=body)
    with pytest.raises(SearchError, match=message):
        await SearxngBackend(http_server.url, client=client).search("q", 5)


async def test_searxng_unreachable_is_a_search_error(client: httpx.AsyncClient) -> None:
    # Port 9 (discard) on 127.0.0.1: nothing listens there in a test environment.
    backend = SearxngBackend("http://127.0.0.1:9", timeout_s=2, client=client)
    with pytest.raises(SearchError, match="could not be reached"):
        await backend.search("q", 5)


# -- DuckDuckGo (ddgs) -------------------------------------------------------------------


async def test_duckduckgo_parses_the_html_page_and_drops_ads(http_server: LocalServer) -> None:
    http_server.route("/html/", body=DDG_PAGE, content_type="text/html")
    backend = DuckDuckGoBackend(search_url=http_server.url + "/html/", timeout_s=5)
    results = await backend.search("llama.cpp batching", max_results=5)
    assert results == [
        SearchResult(
            "Continuous batching in llama.cpp",
            "https://llama.example/batching",
            "How llama.cpp serves many slots at once.",
        ),
        SearchResult("Slots", "https://llama.example/slots", "n_parallel explained."),
    ]
    method, path, form = http_server.requests[0]
    assert (method, path) == ("POST", "/html/")
    assert form["q"] == ["llama.cpp batching"]


async def test_duckduckgo_refusal_is_a_search_error(http_server: LocalServer) -> None:
    http_server.route("/html/", status=202, body="", content_type="text/html")  # rate-limited
    backend = DuckDuckGoBackend(search_url=http_server.url + "/html/", timeout_s=5)
    with pytest.raises(SearchError, match="refused"):
        await backend.search("q", 5)


async def test_duckduckgo_timeout_is_a_search_error(http_server: LocalServer) -> None:
    http_server.route("/html/", body=DDG_PAGE, content_type="text/html", delay_s=3.0)
    backend = DuckDuckGoBackend(search_url=http_server.url + "/html/", timeout_s=1)
    with pytest.raises(SearchError, match="DuckDuckGo"):
        await backend.search("q", 5)


async def test_duckduckgo_garbage_page_gives_no_results(http_server: LocalServer) -> None:
    http_server.route("/html/", body="\x00\x01 garbage <<<", content_type="text/html")
    backend = DuckDuckGoBackend(search_url=http_server.url + "/html/", timeout_s=5)
    assert await backend.search("q", 5) == []


# -- the tool ----------------------------------------------------------------------------


class StaticBackend:
    name = "static"

    def __init__(self, results: list[SearchResult]) -> None:
        self.results = results
        self.queries: list[tuple[str, int]] = []

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        self.queries.append((query, max_results))
        return self.results


async def test_tool_numbers_results_for_citation_and_caps_snippets() -> None:
    long = "word " * 200
    backend = StaticBackend(
        [
            SearchResult("A", "https://a.example", "alpha"),
            SearchResult("", "https://b.example", long),
        ]
    )
    text = await WebSearch(backend, max_results=3).run(WebSearchArgs(query=" q "), ToolContext())
    assert backend.queries == [("q", 3)]
    first, second = text.split("\n\n")
    assert first == "[1] A\nhttps://a.example\nalpha"
    assert second.startswith("[2] https://b.example\nhttps://b.example\nword word")
    assert len(second) < 400 and second.endswith("…")


async def test_tool_says_when_nothing_was_found() -> None:
    text = await WebSearch(StaticBackend([])).run(WebSearchArgs(query="zzz"), ToolContext())
    assert text.startswith("No web results for 'zzz'")
