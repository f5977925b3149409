"""One model call of the agent: its reply streamed to the person (or to a callback that
decides what they see), routed in the pool to the conversation's worker and the
community's fair share, and its tool calls given the ids their results are paired by.

Apart from the graph (`agent_graph.graph`), which decides which call to make and when.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCall
from langchain_core.messages.tool import tool_call as make_tool_call
from langchain_core.messages.utils import message_chunk_to_message
from langchain_core.runnables import Runnable, RunnableConfig
from langgraph.constants import TAG_NOSTREAM

from agent_graph.document_answer import close_stream


def without_calls(message: AIMessage) -> AIMessage:
    """`message` as a plain answer: a model offered no tools cannot call one."""
    if not message.tool_calls and not message.invalid_tool_calls:
        return message
    return message.model_copy(update={"tool_calls": [], "invalid_tool_calls": []})


def with_call_ids(message: AIMessage) -> AIMessage:
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


async def generate(
    runnable: Runnable[Any, Any],
    prompt: list[BaseMessage],
    config: RunnableConfig,
    on_text: Callable[[str], None] | None = None,
    **kw: Any,
) -> AIMessage:
    """The model's reply. Its tokens stream to the person as they come, or, with
    `on_text`, go to that callback instead (which decides what the person sees)."""
    if on_text is not None:
        config = {**config, "tags": [*(config.get("tags") or []), TAG_NOSTREAM]}
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
    # Closed on the way out, so a caller that stops reading (`on_text` raising) ends
    # the generation rather than leaving it to the garbage collector.
    chunks = runnable.astream(prompt, config, **kw)
    try:
        async for chunk in chunks:
            if isinstance(chunk, AIMessageChunk):
                merged = chunk if merged is None else merged + chunk
                if on_text is not None and chunk.text:
                    on_text(chunk.text)
    finally:
        await close_stream(chunks)
    if merged is None:
        return AIMessage("")
    message = message_chunk_to_message(merged)
    assert isinstance(message, AIMessage)
    return with_call_ids(message)
