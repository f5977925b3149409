"""The `web_search` tool and the `SearchBackend` seam it searches through.

Backends (DuckDuckGo via `ddgs`, a SearxNG instance) differ in transport and format
only; each turns its answer into `SearchResult`s and its failures into `SearchError`s,
so the tool, and the model, see one shape whichever is configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, Field

from agent_graph.errors import SearchError
from agent_graph.tools.base import AgentTool, ToolContext

MAX_SNIPPET_CHARS = 300


@dataclass(frozen=True)
class SearchResult:
    title: str
    url: str
    snippet: str


class SearchBackend(Protocol):
    """Finds web pages. Raises SearchError (never a library's own exception)."""

    name: str

    async def search(self, query: str, max_results: int) -> list[SearchResult]: ...


class WebSearchArgs(BaseModel):
    query: str = Field(description="what to search the web for", min_length=1, max_length=300)


class WebSearch(AgentTool[WebSearchArgs]):
    name: ClassVar[str] = "web_search"
    description: ClassVar[str] = (
        "Search the web for current facts, news, or anything you do not know. "
        "Returns numbered results with title, URL and snippet; cite them as [1], [2]."
    )
    args_model = WebSearchArgs

    def __init__(self, backend: SearchBackend, max_results: int = 5, timeout_s: float = 15.0):
        self._backend = backend
        self._max_results = max_results
        self.timeout_s = timeout_s

    def status(self, args: dict[str, Any]) -> str:
        return f"searching the web: {str(args.get('query', ''))[:120]}"

    async def run(self, args: WebSearchArgs, context: ToolContext) -> str:
        results = await self._backend.search(args.query.strip(), self._max_results)
        usable = [result for result in results if result.url or result.snippet]
        if not usable:
            return f"No web results for {args.query!r}. Try other words, or answer without."
        return format_results(usable[: self._max_results])


def format_results(results: list[SearchResult]) -> str:
    lines = []
    for number, result in enumerate(results, start=1):
        snippet = " ".join(result.snippet.split())
        if len(snippet) > MAX_SNIPPET_CHARS:
            snippet = snippet[: MAX_SNIPPET_CHARS - 1] + "…"
        lines.append(f"[{number}] {result.title or result.url}\n{result.url}\n{snippet}")
    return "\n\n".join(lines)


def parse_results(text: str) -> list[SearchResult]:
    """The results `format_results` wrote (a tool message's text); [] for anything else."""
    results = []
    for block in text.split("\n\n"):
        head, _, rest = block.partition("\n")
        number, _, title = head.partition("] ")
        if not number.startswith("[") or not number[1:].isdigit():
            continue
        url, _, snippet = rest.partition("\n")
        results.append(SearchResult(title=title, url=url.strip(), snippet=snippet.strip()))
    return results


def require_text(value: object, field: str, backend: str) -> str:
    """A result field as text; SearchError when a backend sent something else."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise SearchError(f"{backend} sent a malformed result ({field} is not text)")
    return value
