"""A `SearchBackend` on a SearxNG instance's JSON API (`GET /search?q=...&format=json`).

SearxNG is what a community that wants no third-party search API can run itself.
The JSON format is off by default in SearxNG's settings; the 403 it then answers is
translated into an error that names the fix.
"""

from __future__ import annotations

from typing import Any

import httpx

from agent_graph.errors import SearchError
from agent_graph.tools.web_search import SearchResult, require_text


class SearxngBackend:
    name = "searxng"

    def __init__(
        self, base_url: str, *, timeout_s: float = 10.0, client: httpx.AsyncClient | None = None
    ) -> None:
        self._url = base_url.rstrip("/") + "/search"
        self._timeout = timeout_s
        self._client = client

    async def search(self, query: str, max_results: int) -> list[SearchResult]:
        params = {"q": query, "format": "json"}
        try:
            if self._client is not None:
                response = await self._client.get(self._url, params=params, timeout=self._timeout)
            else:
                async with httpx.AsyncClient(timeout=self._timeout) as client:
                    response = await client.get(self._url, params=params)
        except httpx.TimeoutException:
            raise SearchError(
                f"the search engine did not answer within {self._timeout:g} s; try again later"
            ) from None
        except httpx.HTTPError as exc:
            raise SearchError(
                f"the search engine could not be reached ({type(exc).__name__})"
            ) from None
        if response.status_code == 403:
            raise SearchError(
                "SearxNG refused JSON output; enable `json` under search.formats "
                "in its settings.yml"
            )
        if response.status_code != 200:
            raise SearchError(f"the search engine answered HTTP {response.status_code}")
        try:
            body: Any = response.json()
        except ValueError:
            raise SearchError("the search engine sent something that is not JSON") from None
        return _parse(body, max_results)


def _parse(body: Any, max_results: int) -> list[SearchResult]:
    items = body.get("results") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise SearchError("the search engine's answer has no result list")
    results = []
    for item in items[:max_results]:
        if not isinstance(item, dict):
            raise SearchError("the search engine sent a malformed result")
        results.append(
            SearchResult(
                title=require_text(item.get("title"), "title", "SearxNG"),
                url=require_text(item.get("url"), "url", "SearxNG"),
                snippet=require_text(item.get("content"), "content", "SearxNG"),
            )
        )
    return results
