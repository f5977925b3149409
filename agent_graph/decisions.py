"""Tool calls the agent makes itself, and the answers it gives from their results.

When the router (or, in `model` mode, the arithmetic detector) has chosen a tool, the
agent writes the call as an `AIMessage` marked in its metadata, so the history reads
like any tool-using turn. After the result, some cases do not need the model: the
calculator's line when it is the whole answer, a document search that found nothing,
and any failure of a tool the agent chose, which is reported as what it is ("I couldn't
search the web: ...") rather than left to a small model that would invent what the tool
would have found.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import tool_call as make_tool_call

from agent_graph.arithmetic_intent import find_calculation
from agent_graph.fixed_answers import AnswerKey, say
from agent_graph.tool_router import Route
from agent_graph.tools import AgentTool
from agent_graph.tools.documents import parse_passages

logger = logging.getLogger(__name__)

# Marks a tool call the agent made itself (not the model) in the call's metadata.
DECIDED_BY = "decided_by"
ARITHMETIC_INTENT = "arithmetic_intent"
ROUTER = "router"
# Set on such a call when the tool's result line is the whole answer.
RESULT_IS_ANSWER = "result_is_answer"
# Why the router chose the tool (`tool_router.Reason`).
ROUTE_REASON = "route_reason"

_FAILED: dict[str, AnswerKey] = {
    "calculator": "calculator_failed",
    "web_search": "web_failed",
    "search_documents": "documents_failed",
}


def this_turn(messages: Sequence[BaseMessage]) -> Sequence[BaseMessage]:
    """The messages since the person's last message."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return messages[index + 1 :]
    return messages


def _call(
    name: str, args: dict[str, Any], decided_by: str, result_is_answer: bool, reason: str = ""
) -> AIMessage:
    call = make_tool_call(name=name, args=args, id=f"call_{uuid.uuid4().hex}")
    metadata = {DECIDED_BY: decided_by, RESULT_IS_ANSWER: result_is_answer, ROUTE_REASON: reason}
    return AIMessage("", tool_calls=[call], response_metadata=metadata)


def arithmetic_call(message: BaseMessage, offered: list[AgentTool[Any]]) -> AIMessage | None:
    """A calculator call for the calculation written out in `message`, when the
    calculator is on offer (`agent_graph.arithmetic_intent`)."""
    if not any(tool.name == "calculator" for tool in offered):
        return None
    calculation = find_calculation(message.text)
    if calculation is None:
        return None
    arguments = {"expression": calculation.expression}
    return _call("calculator", arguments, ARITHMETIC_INTENT, calculation.whole_message)


def routed_call(route: Route, message: str, offered: list[AgentTool[Any]]) -> AIMessage | None:
    """The call the router chose for `message`; None when no tool is needed. Without web
    search on offer, a request for it in so many words or about the present gets an answer
    saying it cannot be made (an answer from memory would be made up); a question the
    classifier merely thinks the web could answer ("the capital of France") goes to the
    model."""
    if route.tool == "none":
        return None
    if not any(tool.name == route.tool for tool in offered):
        if route.tool == "web_search" and route.reason in ("explicit", "time_cue"):
            return AIMessage(say("web_off", message))
        return None
    whole = route.calculation is not None and route.calculation.whole_message
    return _call(route.tool, dict(route.arguments), ROUTER, whole, route.reason)


def agent_decision(messages: Sequence[BaseMessage]) -> AIMessage | None:
    """This turn's tool call made by the agent rather than the model, if any."""
    return next(
        (
            message
            for message in this_turn(messages)
            if isinstance(message, AIMessage) and message.response_metadata.get(DECIDED_BY)
        ),
        None,
    )


def from_memory_note(messages: Sequence[BaseMessage]) -> str | None:
    """When a web search the router merely thought useful failed (a general question, not
    one about the present or a request to search), the note the model's own answer
    starts with; None otherwise."""
    decision = agent_decision(messages)
    last = messages[-1] if messages else None
    if decision is None or not isinstance(last, ToolMessage) or last.status != "error":
        return None
    if last.name != "web_search" or decision.response_metadata.get(ROUTE_REASON) != "classifier":
        return None
    question = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")
    return say("web_failed_from_memory", question, reason=_failure_reason(last))


def _failure_reason(result: ToolMessage) -> str:
    # The gist for people: a backend's own details ("(DNSError: ...)") stay in the log.
    return result.text.removeprefix("Error: ").split(" (", 1)[0].rstrip(".")


def answer_without_model(messages: Sequence[BaseMessage]) -> AIMessage | None:
    """The answer, when the agent's own call has just returned and its result decides it:
    the calculator's line when that is the whole answer, or the tool's failure (a failed
    search that `from_memory_note` covers is the caller's to check first)."""
    decision = agent_decision(messages)
    last = messages[-1] if messages else None
    if decision is None or not isinstance(last, ToolMessage):
        return None
    question = next((m.text for m in reversed(messages) if isinstance(m, HumanMessage)), "")
    if last.status == "error":
        call = decision.tool_calls[0]
        reason = _failure_reason(last)
        expression = str(call["args"].get("expression", "that"))
        key = _FAILED.get(call["name"], "tool_failed")
        text = say(key, question, name=call["name"], reason=reason, expression=expression)
        return AIMessage(text)
    if decision.response_metadata.get(RESULT_IS_ANSWER):
        return AIMessage(last.text)
    if last.name == "search_documents" and not parse_passages(last.text):
        # Nothing to answer from, so nothing for the model to make up.
        return AIMessage(say("no_passages", question))
    return None
