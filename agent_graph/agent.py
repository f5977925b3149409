"""The agent as the chat service sees it: one turn in, a stream of events out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver

from agent_graph.graph import MODEL_NODE, build_graph


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class ToolEvent:
    """A tool call the agent made, for adapters that show "searching: ..." lines."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    result: str = ""
    duration_s: float = 0.0


AgentEvent = TextDelta | ToolEvent


@dataclass(frozen=True)
class TurnSettings:
    system_prompt: str
    sampling: dict[str, Any]
    history_budget: int = 2048


class Agent:
    def __init__(self, model: BaseChatModel, checkpointer: BaseCheckpointSaver[Any]) -> None:
        self._checkpointer = checkpointer
        self._graph = build_graph(model, checkpointer)

    async def stream_reply(
        self, thread_id: str, user_text: str, settings: TurnSettings
    ) -> AsyncIterator[AgentEvent]:
        """Run one turn; the user's message and the answer are stored under `thread_id`."""
        config: RunnableConfig = {
            "configurable": {
                "thread_id": thread_id,
                "system_prompt": settings.system_prompt,
                "sampling": settings.sampling,
                "history_budget": settings.history_budget,
            }
        }
        stream = self._graph.astream(
            {"messages": [HumanMessage(user_text)]}, config, stream_mode="messages"
        )
        message: Any
        metadata: Any
        async for message, metadata in stream:
            if metadata.get("langgraph_node") != MODEL_NODE:
                continue
            if isinstance(message, AIMessageChunk) and message.text:
                yield TextDelta(message.text)

    async def history(self, thread_id: str) -> list[BaseMessage]:
        state = await self._graph.aget_state({"configurable": {"thread_id": thread_id}})
        return list(state.values.get("messages", []))

    async def record_partial_reply(self, thread_id: str, text: str) -> None:
        """Store the part of an answer that was shown before it was stopped.

        A stopped turn leaves the person's message without an answer; without this the
        next turn would see two questions in a row and none of the text people read.
        """
        history = await self.history(thread_id)
        if not history or not isinstance(history[-1], HumanMessage):
            return  # the answer was stored after all
        config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
        await self._graph.aupdate_state(
            config, {"messages": [AIMessage(text or "(stopped)")]}, as_node=MODEL_NODE
        )

    async def reset(self, thread_id: str) -> None:
        await self._checkpointer.adelete_thread(thread_id)
