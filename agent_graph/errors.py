"""Errors raised by `agent_graph`.

AgentError          base class; `str(exc)` is safe to show to the user
└── ToolError       a tool could not do what the model asked; `str(exc)` goes back to
    │               the model as the tool's result, so it says what to change
    ├── CalculationError   (agent_graph.tools.arithmetic) not allowed, or no finite value
    └── SearchError        a search backend timed out, failed, or answered garbage

Foreign exceptions (httpx, ddgs, a document store's driver) are translated into these
where they enter, so the tools node only has to know `ToolError`.
"""


class AgentError(Exception):
    """The agent could not produce an answer."""


class ToolError(AgentError):
    """A tool call failed in a way the model can read and act on."""


class SearchError(ToolError):
    """A web or document search failed; the text says what happened."""
