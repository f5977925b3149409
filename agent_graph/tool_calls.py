"""Running the tool calls of one model message: checks, timeouts, events, results.

LangGraph's prebuilt `ToolNode` runs whatever tool the model names; this runs only the
tools offered in this turn (so a prompt injection cannot call a switched-off tool),
gives each call its own timeout, turns every failure into a tool result the model can
read, and reports each call as it starts and ends for adapters to show.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import AIMessage, ToolCall, ToolMessage
from pydantic import ValidationError

from agent_graph.errors import ToolError
from agent_graph.events import ToolEvent
from agent_graph.tools.base import AgentTool, ToolContext

logger = logging.getLogger(__name__)

MAX_CALLS_PER_STEP = 4
MAX_RESULT_CHARS = 4000  # what the model reads from one call
MAX_EVENT_RESULT_CHARS = 160  # what people see in a status line


@dataclass(frozen=True)
class Outcome:
    text: str
    ok: bool
    duration_s: float


def _describe_validation(tool: AgentTool[Any], exc: ValidationError) -> str:
    problems = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'arguments'}: {error['msg']}"
        for error in exc.errors()
    )
    expected = ", ".join(
        f"{name} ({field.annotation.__name__ if field.annotation else 'value'})"
        for name, field in tool.args_model.model_fields.items()
    )
    return f"invalid arguments for {tool.name} ({problems}); call it again with: {expected}"


async def run_call(
    tool: AgentTool[Any] | None, name: str, arguments: dict[str, Any], context: ToolContext
) -> Outcome:
    """Run one call; every failure becomes an `Outcome` with ok=False, never an exception."""
    started = time.monotonic()

    def done(text: str, ok: bool) -> Outcome:
        if len(text) > MAX_RESULT_CHARS:
            text = text[: MAX_RESULT_CHARS - 1] + "…"
        return Outcome(text, ok, time.monotonic() - started)

    if tool is None:
        return done(f"Error: there is no tool named {name!r} here; answer without it.", False)
    try:
        args = tool.args_model.model_validate(arguments)
    except ValidationError as exc:
        return done(f"Error: {_describe_validation(tool, exc)}", False)
    try:
        async with asyncio.timeout(tool.timeout_s):
            return done(await tool.run(args, context), True)
    except TimeoutError:
        return done(f"Error: {name} did not finish within {tool.timeout_s:g} s.", False)
    except ToolError as exc:
        return done(f"Error: {exc}", False)
    except Exception:  # a bug in a tool must not end the conversation
        logger.exception("tool %s failed", name)
        return done(f"Error: {name} failed unexpectedly; answer without it.", False)


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_EVENT_RESULT_CHARS else line[: MAX_EVENT_RESULT_CHARS - 1] + "…"


async def run_tool_calls(
    message: AIMessage,
    offered: Sequence[AgentTool[Any]],
    context: ToolContext,
    emit: Callable[[ToolEvent], None],
) -> list[ToolMessage]:
    """One ToolMessage per call in `message`, in order; calls past the cap are not run."""
    by_name = {tool.name: tool for tool in offered}
    results: list[ToolMessage] = []
    for index, call in enumerate(message.tool_calls):
        results.append(await _one(call, index, by_name, context, emit))
    return results


async def _one(
    call: ToolCall,
    index: int,
    by_name: dict[str, AgentTool[Any]],
    context: ToolContext,
    emit: Callable[[ToolEvent], None],
) -> ToolMessage:
    name, arguments, call_id = call["name"], dict(call["args"]), call["id"] or ""
    if index >= MAX_CALLS_PER_STEP:
        text = f"Error: not run; make at most {MAX_CALLS_PER_STEP} tool calls at a time."
        return ToolMessage(text, tool_call_id=call_id, name=name, status="error")
    tool = by_name.get(name)
    summary = tool.status(arguments) if tool is not None else ""
    emit(ToolEvent(name, arguments, finished=False, summary=summary))
    outcome = await run_call(tool, name, arguments, context)
    emit(
        ToolEvent(
            name,
            arguments,
            result=_short(outcome.text.removeprefix("Error: ")),
            duration_s=outcome.duration_s,
            ok=outcome.ok,
            summary=summary,
        )
    )
    status = "success" if outcome.ok else "error"
    return ToolMessage(outcome.text, tool_call_id=call_id, name=name, status=status)
