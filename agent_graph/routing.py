"""Choosing a tool first, greedily, then making the call: tool use for small models.

A small model asked to "answer or call a tool" mostly just answers. Split in two
constrained steps it does much better: first a forced call of a `route` pseudo-tool
whose only argument is an enum of the offered tool names plus "none", decoded greedily;
then, if a tool was chosen, a forced call of that tool (the pool's grammar makes its
arguments valid). "none" goes straight to a plain answer. Models that cannot be forced
to call a tool (no `tool_choice`) skip routing. `benchmarks/tool_eval.py` measures it.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, SystemMessage
from langchain_core.runnables import Runnable

from agent_graph.tools import AgentTool

ROUTE_TOOL = "route"
NO_TOOL = "none"
# The decision is one short JSON object; greedy decoding makes it deterministic.
ROUTE_SAMPLING: dict[str, Any] = {"temperature": 0.0, "max_tokens": 48}
# Room for a whole tool call, whatever the answer length the conversation asks for.
CALL_MAX_TOKENS = 256


def call_sampling(sampling: dict[str, Any]) -> dict[str, Any]:
    """Sampling for the forced call of the chosen tool: greedy, with room to finish."""
    room = max(int(sampling.get("max_tokens", 0) or 0), CALL_MAX_TOKENS)
    return {**sampling, "temperature": 0.0, "max_tokens": room}


def route_schema(offered: list[AgentTool[Any]]) -> dict[str, Any]:
    names = [tool.name for tool in offered]
    return {
        "type": "function",
        "function": {
            "name": ROUTE_TOOL,
            "description": "Choose the tool that answers the user's last message, or none.",
            "parameters": {
                "type": "object",
                # "none" first: the most common answer needs no tool.
                "properties": {"tool": {"type": "string", "enum": [NO_TOOL, *names]}},
                "required": ["tool"],
            },
        },
    }


def route_prompt(prompt: list[BaseMessage]) -> list[BaseMessage]:
    """The turn's prompt with the decision asked for at the end of the system message."""
    system, rest = prompt[0], prompt[1:]
    question = (
        f"{system.text}\n\nFirst decide which tool answers the user's last message.\n"
        "Examples: 'hi, how are you?' -> none; 'tell me a joke' -> none; "
        "'what is 12 * 7?' -> calculator; 'latest news about Mars' -> web_search; "
        "'what are the server rules?' -> search_documents. Most messages need none."
    )
    return [SystemMessage(question), *rest]


def forced(model: BaseChatModel, schema: dict[str, Any], name: str) -> Runnable[Any, Any] | None:
    """`model` bound to call `name`, or None when it cannot be forced to."""
    try:
        return model.bind_tools([schema], tool_choice=name)
    except (NotImplementedError, TypeError, ValueError):
        return None


def chosen_tool(decision: AIMessage, offered: list[AgentTool[Any]]) -> AgentTool[Any] | None:
    for call in decision.tool_calls:
        if call["name"] == ROUTE_TOOL:
            choice = call["args"].get("tool")
            return next((tool for tool in offered if tool.name == choice), None)
    return None
