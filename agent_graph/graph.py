"""The agent as an explicit LangGraph `StateGraph`: model -> tools -> model ... -> end.

An explicit graph (rather than `langchain.agents.create_agent`) keeps each step visible
and testable, and lets every per-turn value come from `config["configurable"]`: the
system prompt and sampling are applied per call and never stored, and so are the
enabled tools and the document scope, so a changed setting applies at the next
message. The model is offered only the tools enabled for this turn; the tools node
runs only those (see `agent_graph.tool_calls`). A turn may take `max_tool_rounds`
tool-calling steps; a model that asks for more is stopped with an honest answer.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call as make_tool_call
from langchain_core.messages.utils import message_chunk_to_message
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent_graph.arithmetic_intent import find_calculation
from agent_graph.events import TextDelta
from agent_graph.history import fit_history, overflow, repair_tool_pairs
from agent_graph.prompts import PromptStyle, system_prompt_with_tools
from agent_graph.routing import (
    ROUTE_SAMPLING,
    ROUTE_TOOL,
    call_sampling,
    chosen_tool,
    forced,
    route_prompt,
    route_schema,
)
from agent_graph.tool_calls import run_tool_calls
from agent_graph.tools import AgentTool, Toolbox, ToolContext

__all__ = ["LIMIT_NODE", "MODEL_NODE", "TOOLS_NODE", "build_graph", "fit_history"]

logger = logging.getLogger(__name__)

MODEL_NODE = "model"
TOOLS_NODE = "tools"
LIMIT_NODE = "step_limit"

STEP_LIMIT_ANSWER = (
    "I stopped after {rounds} tool steps without reaching an answer, so I can't answer "
    "this reliably. Try a narrower question, or ask me to skip the tools."
)


def this_turn(messages: Sequence[BaseMessage]) -> Sequence[BaseMessage]:
    """The messages since the person's last message."""
    for index in range(len(messages) - 1, -1, -1):
        if isinstance(messages[index], HumanMessage):
            return messages[index + 1 :]
    return messages


def tool_rounds(messages: Sequence[BaseMessage]) -> int:
    """Tool-calling model messages since the person's last message."""
    turn = this_turn(messages)
    return sum(1 for message in turn if isinstance(message, AIMessage) and message.tool_calls)


def _turn(config: RunnableConfig, toolbox: Toolbox) -> tuple[ToolContext, list[AgentTool[Any]]]:
    settings = config.get("configurable", {})
    context = ToolContext(document_scope=str(settings.get("document_scope", "") or ""))
    return context, toolbox.offered(settings.get("tools", ()), context)


# Marks a tool call the agent made itself (not the model) in the call's metadata.
DECIDED_BY = "decided_by"
ARITHMETIC_INTENT = "arithmetic_intent"
# Set on such a call when the tool's result line is the whole answer.
RESULT_IS_ANSWER = "result_is_answer"


def arithmetic_call(message: BaseMessage, offered: list[AgentTool[Any]]) -> AIMessage | None:
    """A calculator call for the calculation written out in `message`, when the
    calculator is on offer (`agent_graph.arithmetic_intent`)."""
    if not any(tool.name == "calculator" for tool in offered):
        return None
    calculation = find_calculation(message.text)
    if calculation is None:
        return None
    call = make_tool_call(
        name="calculator",
        args={"expression": calculation.expression},
        id=f"call_{uuid.uuid4().hex}",
    )
    metadata = {DECIDED_BY: ARITHMETIC_INTENT, RESULT_IS_ANSWER: calculation.whole_message}
    return AIMessage("", tool_calls=[call], response_metadata=metadata)


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


def result_as_answer(messages: Sequence[BaseMessage]) -> AIMessage | None:
    """The tool's result as the answer, when the agent's own call asked for that and
    the tool succeeded; None otherwise (the model answers)."""
    decision = agent_decision(messages)
    last = messages[-1] if messages else None
    if decision is None or not decision.response_metadata.get(RESULT_IS_ANSWER):
        return None
    if not isinstance(last, ToolMessage) or last.status == "error":
        return None
    return AIMessage(last.text)


def _with_call_ids(message: AIMessage) -> AIMessage:
    """Every tool call with an id (results are paired by it); unparsable calls kept as
    calls with no arguments, so the model is told what its arguments should have been."""
    calls: list[ToolCall] = [
        make_tool_call(
            name=call["name"], args=call["args"], id=call["id"] or f"call_{uuid.uuid4().hex}"
        )
        for call in message.tool_calls
    ]
    calls += [
        make_tool_call(
            name=bad["name"] or "unknown", args={}, id=bad["id"] or f"call_{uuid.uuid4().hex}"
        )
        for bad in message.invalid_tool_calls
    ]
    if not calls:
        return message
    return message.model_copy(update={"tool_calls": calls, "invalid_tool_calls": []})


async def _generate(
    runnable: Runnable[Any, Any], prompt: list[BaseMessage], config: RunnableConfig, **kw: Any
) -> AIMessage:
    # Merging the stream here keeps tool calls however the model implements ainvoke.
    merged: AIMessageChunk | None = None
    configurable = config.get("configurable", {})
    routing: dict[str, str] = {}
    # The community the turn belongs to: the pool admits communities' jobs fairly.
    if configurable.get("document_scope"):
        routing["scope"] = str(configurable["document_scope"])
    # The conversation: its next job goes to the worker that holds its prefix.
    if configurable.get("thread_id"):
        routing["affinity"] = str(configurable["thread_id"])
    kw = {**routing, **kw}
    async for chunk in runnable.astream(prompt, config, **kw):
        if isinstance(chunk, AIMessageChunk):
            merged = chunk if merged is None else merged + chunk
    if merged is None:
        return AIMessage("")
    message = message_chunk_to_message(merged)
    assert isinstance(message, AIMessage)
    return _with_call_ids(message)


def build_graph(
    model: BaseChatModel,
    checkpointer: BaseCheckpointSaver[Any] | None,
    toolbox: Toolbox | None = None,
    *,
    max_tool_rounds: int = 4,
    max_stored_messages: int = 400,
    prompt_style: PromptStyle = "guided",
    route_tools: bool = False,
    detect_arithmetic: bool = True,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the agent. Per-turn values come from `config["configurable"]`:
    `system_prompt` (str), `sampling` (dict), `history_budget` (tokens), `tools`
    (enabled tool names) and `document_scope` (whose documents may be searched).
    With `route_tools`, a turn's first step picks a tool greedily before calling it,
    and the step after the tool's result answers without tools (`agent_graph.routing`).
    With `detect_arithmetic`, a message with a written-out calculation gets the
    calculator at once, and the model answers from its result."""
    tools = toolbox or Toolbox([])
    unbindable: set[type[BaseChatModel]] = set()

    def bound(offered: list[AgentTool[Any]]) -> Runnable[Any, Any]:
        if not offered or type(model) in unbindable:
            return model
        try:
            return model.bind_tools([tool.schema() for tool in offered])
        except NotImplementedError:
            unbindable.add(type(model))
            logger.warning("%s cannot call tools; answering without them", type(model).__name__)
            return model

    def without_model(stored: list[BaseMessage], offered: list[AgentTool[Any]]) -> AIMessage | None:
        """The step when the agent decides it: a calculator call for a written-out
        calculation, or that call's result as the answer."""
        if detect_arithmetic and stored and isinstance(stored[-1], HumanMessage):
            return arithmetic_call(stored[-1], offered)
        given = result_as_answer(stored)
        if given is not None:
            get_stream_writer()(TextDelta(given.text))
        return given

    async def call_model(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        settings = config.get("configurable", {})
        _, offered = _turn(config, tools)
        stored: list[BaseMessage] = list(state["messages"])
        drop = overflow(stored, max_stored_messages)
        removals = [RemoveMessage(id=message.id) for message in drop if message.id]
        decided = without_model(stored, offered)
        if decided is not None:
            return {"messages": [*removals, decided]}
        history = fit_history(repair_tool_pairs(stored), int(settings.get("history_budget", 2048)))
        system = system_prompt_with_tools(
            str(settings.get("system_prompt", "")), offered, prompt_style
        )
        prompt: list[BaseMessage] = [SystemMessage(system), *history]
        sampling = settings.get("sampling", {})
        first_step = bool(stored) and isinstance(stored[-1], HumanMessage)
        if route_tools and offered and first_step:
            response = await _routed(prompt, offered, config, sampling)
        elif (route_tools or agent_decision(stored) is not None) and offered:
            # Routed turns use one tool; then the answer, from the plain system prompt
            # (tool guidance with no tool on offer makes small models write calls as text).
            plain = [SystemMessage(str(settings.get("system_prompt", ""))), *history]
            response = await _generate(model, plain, config, **sampling)
        elif offered:
            response = await _with_tools_or_plain(prompt, offered, config, sampling)
        else:
            response = await _generate(model, prompt, config, **sampling)
        return {"messages": [*removals, response]}

    async def _with_tools_or_plain(
        prompt: list[BaseMessage],
        offered: list[AgentTool[Any]],
        config: RunnableConfig,
        sampling: dict[str, Any],
    ) -> AIMessage:
        try:
            return await _generate(bound(offered), prompt, config, **sampling)
        except Exception:  # e.g. a tool call cut off by max_tokens: answer without tools
            logger.warning("generation with tools failed; answering without", exc_info=True)
            return await _generate(model, prompt, config, **sampling)

    async def _routed(
        prompt: list[BaseMessage],
        offered: list[AgentTool[Any]],
        config: RunnableConfig,
        sampling: dict[str, Any],
    ) -> AIMessage:
        router = forced(model, route_schema(offered), ROUTE_TOOL)
        if router is None:
            return await _generate(bound(offered), prompt, config, **sampling)
        try:
            decision = await _generate(router, route_prompt(prompt), config, **ROUTE_SAMPLING)
            tool = chosen_tool(decision, offered)
            caller = forced(model, tool.schema(), tool.name) if tool is not None else None
            if caller is not None:
                return await _generate(caller, prompt, config, **call_sampling(sampling))
        except Exception:  # a decision or call that failed: answer without the tool
            logger.warning("tool routing failed; answering without tools", exc_info=True)
        # "none" (or a failed route): a plain answer, with no tool on offer to confuse it.
        return await _generate(model, prompt, config, **sampling)

    async def call_tools(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        context, offered = _turn(config, tools)
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        results = await run_tool_calls(last, offered, context, get_stream_writer())
        return {"messages": results}

    async def stop_at_limit(state: MessagesState) -> dict[str, Any]:
        last = state["messages"][-1]
        assert isinstance(last, AIMessage)
        not_run: list[BaseMessage] = [
            ToolMessage(
                "Error: not run; the step limit was reached.",
                tool_call_id=call["id"] or "",
                name=call["name"],
                status="error",
            )
            for call in last.tool_calls
        ]
        answer = STEP_LIMIT_ANSWER.format(rounds=max_tool_rounds)
        get_stream_writer()(TextDelta(answer))
        return {"messages": [*not_run, AIMessage(answer)]}

    def after_model(state: MessagesState) -> str:
        last = state["messages"][-1]
        if not isinstance(last, AIMessage) or not last.tool_calls:
            return END
        if tool_rounds(state["messages"]) > max_tool_rounds:
            return LIMIT_NODE
        return TOOLS_NODE

    builder = StateGraph(MessagesState)
    builder.add_node(MODEL_NODE, call_model)
    builder.add_node(TOOLS_NODE, call_tools)
    builder.add_node(LIMIT_NODE, stop_at_limit)
    builder.add_edge(START, MODEL_NODE)
    builder.add_conditional_edges(MODEL_NODE, after_model, [TOOLS_NODE, LIMIT_NODE, END])
    builder.add_edge(TOOLS_NODE, MODEL_NODE)
    builder.add_edge(LIMIT_NODE, END)
    return builder.compile(checkpointer=checkpointer)
