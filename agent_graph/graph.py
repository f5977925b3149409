"""The agent as an explicit LangGraph `StateGraph`: model -> tools -> model ... -> end.

An explicit graph (rather than `langchain.agents.create_agent`) keeps each step visible
and testable, and lets every per-turn value come from `config["configurable"]`: the
system prompt and sampling are applied per call and never stored, and so are the
enabled tools and the document scope, so a changed setting applies at the next
message. The model is offered only the tools enabled for this turn; the tools node
runs only those (see `agent_graph.tool_calls`). A turn may take `max_tool_rounds`
tool-calling steps; a model that asks for more is stopped with an honest answer.

Who chooses the tools is the turn's `tool_routing` setting: `router` (the default) has
`agent_graph.tool_router` choose before the model runs, the agent make the call, and the
model answer from its result with no tool on offer; `model` offers the tools to the
model in its native tool-call format, with the router's choice as a hint in the system
prompt (and written-out calculations still sent straight to the calculator when
`detect_arithmetic` is on); `off` uses no tools.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent_graph.decisions import (
    agent_decision,
    answer_without_model,
    arithmetic_call,
    from_memory_note,
    routed_call,
    this_turn,
)
from agent_graph.document_answer import (
    DocumentAnswers,
    RunawayGuard,
    shown_answer,
)
from agent_graph.events import TextDelta
from agent_graph.fixed_answers import say
from agent_graph.generation import generate, without_calls
from agent_graph.history import fit_history, overflow, repair_tool_pairs
from agent_graph.prompts import (
    PromptStyle,
    answer_from_result,
    router_hint,
    system_prompt_with_tools,
)
from agent_graph.result_answer import CallGuard, web_digest, web_sources
from agent_graph.tool_calls import run_tool_calls
from agent_graph.tool_router import ToolRouter, routed_text
from agent_graph.tools import AgentTool, Toolbox, ToolContext
from agent_graph.tools.documents import parse_passages

__all__ = ["LIMIT_NODE", "MODEL_NODE", "TOOLS_NODE", "build_graph", "fit_history"]

logger = logging.getLogger(__name__)

MODEL_NODE = "model"
TOOLS_NODE = "tools"
LIMIT_NODE = "step_limit"

STEP_LIMIT_ANSWER = (
    "I stopped after {rounds} tool steps without reaching an answer, so I can't answer "
    "this reliably. Try a narrower question, or ask me to skip the tools."
)


def tool_rounds(messages: Sequence[BaseMessage]) -> int:
    """Tool-calling model messages since the person's last message."""
    turn = this_turn(messages)
    return sum(1 for message in turn if isinstance(message, AIMessage) and message.tool_calls)


def _turn(config: RunnableConfig, toolbox: Toolbox) -> tuple[ToolContext, list[AgentTool[Any]]]:
    settings = config.get("configurable", {})
    context = ToolContext(document_scope=str(settings.get("document_scope", "") or ""))
    return context, toolbox.offered(settings.get("tools", ()), context)


class _Runaway(Exception):
    """Raised from a stream's text callback to stop the generation."""


ToolRouting = Literal["router", "model", "off"]
TOOL_ROUTING_MODES: tuple[ToolRouting, ...] = ("router", "model", "off")


def build_graph(
    model: BaseChatModel,
    checkpointer: BaseCheckpointSaver[Any] | None,
    toolbox: Toolbox | None = None,
    *,
    max_tool_rounds: int = 4,
    max_stored_messages: int = 400,
    prompt_style: PromptStyle = "guided",
    router: ToolRouter | None = None,
    detect_arithmetic: bool = True,
    model_hint: bool = True,
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the agent. Per-turn values come from `config["configurable"]`:
    `system_prompt` (str), `sampling` (dict), `history_budget` (tokens), `tools`
    (enabled tool names), `document_scope` (whose documents may be searched) and
    `tool_routing` (who chooses tools: see the module's docstring). Without `router`,
    the `router` mode decides by rules alone (no embedder, no document probe). With
    `model_hint`, the `model` mode's system prompt carries the router's choice."""
    tools = toolbox or Toolbox([])
    tool_router = router or ToolRouter()
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

    async def decide(
        message: BaseMessage, offered: list[AgentTool[Any]], context: ToolContext, mode: str
    ) -> tuple[AIMessage | None, str | None]:
        """The agent's own step for a new message: a tool call, or an answer; None
        leaves the step to the model, with the note its answer starts with, if any."""
        if mode == "router":
            names = [tool.name for tool in offered]
            route = await tool_router.route(message.text, names, context.document_scope)
            if route.reason == "unchecked_arithmetic":
                return None, say("unchecked_arithmetic", message.text)
            return routed_call(route, message.text, offered), None
        if mode == "model" and detect_arithmetic:
            return arithmetic_call(message, offered), None
        return None, None

    async def hint(
        message: BaseMessage, offered: list[AgentTool[Any]], context: ToolContext
    ) -> str:
        """In `model` mode, the router's choice as a hint the model may follow or not."""
        names = [tool.name for tool in offered]
        route = await tool_router.route(message.text, names, context.document_scope)
        return router_hint(route.tool) if route.tool in names else ""

    async def call_model(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        settings = config.get("configurable", {})
        context, offered = _turn(config, tools)
        mode = str(settings.get("tool_routing", "router"))
        stored: list[BaseMessage] = list(state["messages"])
        drop = overflow(stored, max_stored_messages)
        removals = [RemoveMessage(id=message.id) for message in drop if message.id]
        note: str | None = None
        if stored and isinstance(stored[-1], HumanMessage):
            decided, note = await decide(stored[-1], offered, context, mode)
        else:
            note = from_memory_note(stored)
            decided = None if note is not None else answer_without_model(stored)
        if decided is not None:
            if not decided.tool_calls:
                get_stream_writer()(TextDelta(decided.text))
            return {"messages": [*removals, decided]}
        history = fit_history(repair_tool_pairs(stored), int(settings.get("history_budget", 2048)))
        system_prompt = str(settings.get("system_prompt", ""))
        sampling = settings.get("sampling", {})
        decision = agent_decision(stored)
        if note is not None:
            response = await answer_from_memory(note, history, system_prompt, config, sampling)
        elif decision is not None:
            # The agent's call has its result: the model answers from it, with no tool
            # on offer (tool guidance without a tool makes small models write calls as text).
            tool_name = decision.tool_calls[0]["name"]
            prompt = [SystemMessage(answer_from_result(system_prompt, tool_name)), *history]
            response = await answer_from_tool(prompt, stored, tool_name, config, sampling)
        elif mode == "model" and offered:
            system = system_prompt_with_tools(system_prompt, offered, prompt_style)
            if model_hint and stored and isinstance(stored[-1], HumanMessage):
                system += await hint(stored[-1], offered, context)
            prompt = [SystemMessage(system), *history]
            response = await _with_tools_or_plain(prompt, offered, config, sampling)
        else:
            prompt = [SystemMessage(system_prompt), *history]
            response = without_calls(await generate(model, prompt, config, **sampling))
        return {"messages": [*removals, response]}

    async def answer_from_memory(
        note: str,
        history: list[BaseMessage],
        system_prompt: str,
        config: RunnableConfig,
        sampling: dict[str, Any],
    ) -> AIMessage:
        """The model answers from what it knows, after `note`, which says why that is
        unchecked (the search the router tried failed and the question is general, or a
        calculation could not be read whole). A failed call and its error are left out
        of the prompt (a small model would only repeat them)."""
        get_stream_writer()(TextDelta(note))
        asked = [
            message
            for message in history
            if not isinstance(message, ToolMessage)
            and not (isinstance(message, AIMessage) and message.tool_calls)
        ]
        prompt = [SystemMessage(system_prompt), *asked]
        response = without_calls(await generate(model, prompt, config, **sampling))
        return AIMessage(note + response.text)

    async def answer_from_tool(
        prompt: list[BaseMessage],
        stored: list[BaseMessage],
        tool_name: str,
        config: RunnableConfig,
        sampling: dict[str, Any],
    ) -> AIMessage:
        """The model's answer from the agent's tool result, guarded against calls written
        as text, with what the tool found under it (see `agent_graph.result_answer`)."""
        write = get_stream_writer()
        if tool_name == "search_documents":
            mode = config.get("configurable", {}).get("document_answers", "strict")
            return await answer_from_documents(prompt, stored, mode, config, sampling)
        result = stored[-1]
        found = result.text if tool_name == "web_search" else ""
        sources = web_sources(found)
        guard = CallGuard(lambda text: write(TextDelta(text)))
        try:
            await generate(model, prompt, config, on_text=guard.feed, **sampling)
        except Exception:
            if not sources:
                raise
            # What the tool found answers even when the model cannot.
            logger.warning("the model failed; answering with what the tool found", exc_info=True)
        answer = guard.finish()
        if not answer.strip() and found:
            # No answer of the model's own: the tool's findings, in their own words.
            answer, sources = web_digest(found), ""
            write(TextDelta(answer))
        if sources:
            write(TextDelta(sources))
        return AIMessage(answer + sources)

    async def answer_from_documents(
        prompt: list[BaseMessage],
        stored: list[BaseMessage],
        mode: DocumentAnswers,
        config: RunnableConfig,
        sampling: dict[str, Any],
    ) -> AIMessage:
        """The model's answer from the passages just read, stopped if it runs away, shown
        as `mode` allows (`agent_graph.document_answer`): in `strict` and `mark` it is
        checked whole before anything of it is shown, so it does not stream."""
        write = get_stream_writer()
        guard, calls = RunawayGuard(), CallGuard(lambda text: None)
        streamed = CallGuard(lambda text: write(TextDelta(text))) if mode == "off" else None

        def feed(text: str) -> None:
            (streamed or calls).feed(text)
            if guard.feed(text):
                raise _Runaway

        try:
            await generate(model, prompt, config, on_text=feed, **sampling)
        except _Runaway:
            pass
        except Exception:  # the evidence answers even when the model cannot
            logger.warning("the model failed; answering with the evidence", exc_info=True)
        written = (streamed or calls).finish()
        answer = guard.text if written.strip() else ""
        question = next((m.text for m in reversed(stored) if isinstance(m, HumanMessage)), "")
        passages = parse_passages(stored[-1].text)
        embedder = tool_router.embedder
        checked = await shown_answer(embedder, routed_text(question), answer, passages, mode)
        shown = checked.render()
        if mode == "off":
            # The answer itself has streamed; what follows it is the evidence.
            shown = shown[len(answer.strip()) :] if answer.strip() else shown.lstrip("\n")
            write(TextDelta(shown))
            return AIMessage(answer.strip() + shown)
        write(TextDelta(shown))
        return AIMessage(shown)

    async def _with_tools_or_plain(
        prompt: list[BaseMessage],
        offered: list[AgentTool[Any]],
        config: RunnableConfig,
        sampling: dict[str, Any],
    ) -> AIMessage:
        try:
            return await generate(bound(offered), prompt, config, **sampling)
        except Exception:  # e.g. a tool call cut off by max_tokens: answer without tools
            logger.warning("generation with tools failed; answering without", exc_info=True)
            return await generate(model, prompt, config, **sampling)

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
