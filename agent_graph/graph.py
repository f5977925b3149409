"""The agent as an explicit LangGraph `StateGraph`.

An explicit graph (rather than `langchain.agents.create_agent`) keeps each step visible
and testable: the model node builds the prompt per turn from the conversation's
current settings, so a changed system prompt or sampling value applies at once and is
never frozen into the stored history. Tools join as a second node in a later step.
"""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, SystemMessage, trim_messages
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.state import CompiledStateGraph

MODEL_NODE = "model"


def fit_history(messages: list[BaseMessage], token_budget: int) -> list[BaseMessage]:
    """Keep the newest turns that fit `token_budget`, starting on a human turn."""
    kept = trim_messages(
        messages,
        max_tokens=token_budget,
        token_counter="approximate",
        strategy="last",
        start_on="human",
        allow_partial=False,
    )
    return list(kept)


def build_graph(
    model: BaseChatModel, checkpointer: BaseCheckpointSaver[Any] | None
) -> CompiledStateGraph[Any, Any, Any, Any]:
    """Compile the agent. Per-turn values come from `config["configurable"]`:
    `system_prompt` (str), `sampling` (dict) and `history_budget` (tokens)."""

    async def call_model(state: MessagesState, config: RunnableConfig) -> dict[str, Any]:
        settings = config.get("configurable", {})
        stored: list[BaseMessage] = list(state["messages"])
        history = fit_history(stored, int(settings.get("history_budget", 2048)))
        if not history:  # one message longer than the budget: send it alone
            history = stored[-1:]
        prompt: list[BaseMessage] = [SystemMessage(settings.get("system_prompt", "")), *history]
        response = await model.ainvoke(prompt, config, **settings.get("sampling", {}))
        return {"messages": [response]}

    builder = StateGraph(MessagesState)
    builder.add_node(MODEL_NODE, call_model)
    builder.add_edge(START, MODEL_NODE)
    builder.add_edge(MODEL_NODE, END)
    return builder.compile(checkpointer=checkpointer)
