"""Errors raised by `agent_graph`.

AgentError        base class; `str(exc)` is safe to show to the user
"""


class AgentError(Exception):
    """The agent could not produce an answer."""
