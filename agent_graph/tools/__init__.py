"""The agent's tools, and `Toolbox`: which of them exist in this deployment.

A tool exists when its backend was given (the calculator needs none); which existing
tools a conversation may use is the `tools` setting, passed per turn. The model is only
ever offered, and the tools node only ever runs, the intersection of the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from agent_graph.tools.base import AgentTool, ToolContext
from agent_graph.tools.calculator import Calculator
from agent_graph.tools.documents import DocumentSearch, SearchDocuments
from agent_graph.tools.web_search import SearchBackend, WebSearch

__all__ = ["AgentTool", "ToolContext", "Toolbox"]


class Toolbox:
    def __init__(self, tools: Iterable[AgentTool[Any]]) -> None:
        self._tools = {tool.name: tool for tool in tools}

    @classmethod
    def standard(
        cls,
        search_backend: SearchBackend | None = None,
        document_search: DocumentSearch | None = None,
    ) -> Toolbox:
        """The calculator, plus web and document search where a backend is given."""
        tools: list[AgentTool[Any]] = [Calculator()]
        if search_backend is not None:
            tools.append(WebSearch(search_backend))
        if document_search is not None:
            tools.append(SearchDocuments(document_search))
        return cls(tools)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._tools)

    def offered(self, enabled: Iterable[str], context: ToolContext) -> list[AgentTool[Any]]:
        """The tools this turn may use, in a stable order."""
        allowed = set(enabled)
        return [
            tool
            for name, tool in self._tools.items()
            if name in allowed and tool.available(context)
        ]
