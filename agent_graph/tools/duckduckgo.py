"""A `SearchBackend` on DuckDuckGo's HTML endpoint, through the `ddgs` package.

`ddgs` does the HTTP (with browser impersonation) and the HTML parsing; using its
DuckDuckGo engine directly, rather than the `DDGS` meta-search, keeps results from one
engine and lets tests point `search_url` at a page they serve on 127.0.0.1. `ddgs` is
blocking, so it runs in a worker thread; its exceptions become `SearchError`s here.
"""

from __future__ import annotations

import asyncio

from ddgs.engines.duckduckgo import Duckduckgo
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

from agent_graph.errors import SearchError
from agent_graph.tools.web_search import SearchResult


class DuckDuckGoBackend:
    name = "duckduckgo"

    def __init__(
        self, *, timeout_s: float = 10.0, region: str = "wt-wt", search_url: str | None = None
    ) -> None:
        self._timeout_s = timeout_s
        self._region = region
        self._search_url = search_url

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        return await asyncio.to_thread(self._search_blocking, query, max_results)

    def _search_blocking(self, query: str, max_results: int) -> list[SearchResult]:
        engine = Duckduckgo(timeout=max(1, round(self._timeout_s)))
        if self._search_url is not None:
            engine.search_url = self._search_url
        try:
            found = engine.search(query, region=self._region)
        except TimeoutException:
            raise SearchError(
                f"DuckDuckGo did not answer within {self._timeout_s:g} s; try again later"
            ) from None
        except RatelimitException:
            raise SearchError(
                "DuckDuckGo is rate-limiting this bot; try again in a minute"
            ) from None
        except DDGSException as exc:
            raise SearchError(f"DuckDuckGo could not be reached ({exc})"[:300]) from None
        except Exception as exc:  # parsing a changed or garbage page (lxml)
            raise SearchError(
                f"DuckDuckGo's answer could not be read ({type(exc).__name__})"
            ) from None
        if found is None:
            raise SearchError("DuckDuckGo refused the search (it may be rate-limiting this bot)")
        return [
            SearchResult(title=item.title, url=item.href, snippet=item.body)
            for item in found[:max_results]
            if item.href
        ]
