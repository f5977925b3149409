"""The agent as the chat service sees it: one turn in, a stream of events out.

`Agent` owns the compiled graph and translates LangGraph's stream (model tokens, and
the custom events the tools node writes) into `TextDelta`s and `ToolEvent`s, in the
order they happened. Tool backends are injected here; a tool without a backend is
simply never offered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    ToolMessage,
)
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from agent_graph.events import AgentEvent, TextDelta, ToolEvent, Usage
from agent_graph.graph import MODEL_NODE, ToolRouting, build_graph
from agent_graph.history import NOT_RUN, split_turns
from agent_graph.prompts import PromptStyle
from agent_graph.tool_router import ToolRouter
from agent_graph.tools import Toolbox
from agent_graph.tools.documents import DocumentSearch
from agent_graph.tools.web_search import SearchBackend
from storage.documents.embedder import Embedder

__all__ = ["Agent", "AgentEvent", "TextDelta", "ToolEvent", "TurnSettings", "Usage"]

# The `name` of a message that carries quoted content rather than the person's words.
QUOTED_NAME = "quoted"


@dataclass(frozen=True)
class TurnSettings:
    system_prompt: str
    sampling: dict[str, Any]
    history_budget: int = 2048
    tools: tuple[str, ...] = ()  # enabled tool names (the `tools` setting)
    document_scope: str = ""  # whose documents search_documents reads; "" = none
    tool_routing: ToolRouting = "router"  # who chooses tools (the `tool_routing` setting)


class Agent:
    def __init__(
        self,
        model: BaseChatModel,
        checkpointer: BaseCheckpointSaver[Any],
        *,
        search_backend: SearchBackend | None = None,
        document_search: DocumentSearch | None = None,
        max_tool_rounds: int = 4,
        max_stored_messages: int = 400,
        prompt_style: PromptStyle = "guided",
        embedder: Embedder | None = None,
        detect_arithmetic: bool = True,
        model_hint: bool = True,
    ) -> None:
        """`embedder` (MiniLM in the app) lets the tool router compare messages with its
        labelled examples and probe the scope's documents; without one it uses rules."""
        self._checkpointer = checkpointer
        self.toolbox = Toolbox.standard(search_backend, document_search)
        self.router = ToolRouter(embedder, document_search if embedder is not None else None)
        self._max_tool_rounds = max_tool_rounds
        self._graph = build_graph(
            model,
            checkpointer,
            self.toolbox,
            max_tool_rounds=max_tool_rounds,
            max_stored_messages=max_stored_messages,
            prompt_style=prompt_style,
            router=self.router,
            detect_arithmetic=detect_arithmetic,
            model_hint=model_hint,
        )

    async def stream_reply(
        self,
        thread_id: str,
        user_text: str,
        settings: TurnSettings,
        *,
        context: str | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """Run one turn; the user's message and the answer are stored under `thread_id`.

        `context` (a message the person replied to, already labelled as quoted content)
        goes in as a message of its own just before theirs, never mixed into their words:
        tools are chosen from what the person wrote."""
        config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "system_prompt": settings.system_prompt,
                "sampling": settings.sampling,
                "history_budget": settings.history_budget,
                "tools": tuple(settings.tools),
                "document_scope": settings.document_scope,
                "tool_routing": settings.tool_routing,
            },
            # Each tool round is two graph steps; the step limit ends turns long before.
            "recursion_limit": 2 * self._max_tool_rounds + 8,
        }
        incoming: list[BaseMessage] = [HumanMessage(user_text)]
        if context:
            incoming.insert(0, HumanMessage(context, name=QUOTED_NAME))
        stream = self._graph.astream(
            {"messages": incoming}, config, stream_mode=["messages", "custom"]
        )
        mode: str
        payload: Any
        async for mode, payload in stream:
            if mode == "custom":
                if isinstance(payload, TextDelta | ToolEvent):
                    yield payload
                continue
            message, metadata = payload
            if metadata.get("langgraph_node") != MODEL_NODE:
                continue
            if isinstance(message, AIMessageChunk) and message.text:
                yield TextDelta(message.text)
            usage = getattr(message, "usage_metadata", None)
            if usage:
                yield Usage(int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0)))

    async def history(self, thread_id: str) -> list[BaseMessage]:
        state = await self._graph.aget_state({"configurable": {"thread_id": thread_id}})
        return list(state.values.get("messages", []))

    async def record_partial_reply(self, thread_id: str, text: str) -> None:
        """Store the part of an answer that was shown before it was stopped.

        A stopped turn leaves the person's message without an answer (and maybe a tool
        call without its result); without this the next turn would see two questions in
        a row and none of the text people read. `text` is everything shown this turn.
        """
        history = await self.history(thread_id)
        if not history:
            return
        last = history[-1]
        if isinstance(last, AIMessage) and not last.tool_calls:
            return  # the answer was stored after all
        turn = split_turns(history)[-1]
        stored_text = "".join(m.text for m in turn if isinstance(m, AIMessage))
        unseen = text[len(stored_text) :] if text.startswith(stored_text) else text
        answered = {m.tool_call_id for m in turn if isinstance(m, ToolMessage)}
        not_run: list[BaseMessage] = [
            ToolMessage(NOT_RUN, tool_call_id=call["id"] or "", name=call["name"], status="error")
            for message in turn
            if isinstance(message, AIMessage)
            for call in message.tool_calls
            if call["id"] not in answered
        ]
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        await self._graph.aupdate_state(
            config,
            {"messages": [*not_run, AIMessage(unseen if unseen.strip() else "(stopped)")]},
            as_node=MODEL_NODE,
        )

    async def reset(self, thread_id: str) -> None:
        await self._checkpointer.adelete_thread(thread_id)
