"""A LangChain chat model that generates through the worker pool."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from inference.async_chat_model import AsyncOnlyChatModel
from inference.client import InferenceClient

# Sampling keys a caller may pass per call (`model.astream(messages, temperature=0.2)`).
SAMPLING_KEYS = frozenset(
    {"temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens", "seed", "stop"}
)


def to_openai_message(message: BaseMessage) -> dict[str, Any]:
    if isinstance(message, ToolMessage):
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id,
            "name": message.name or "",
            "content": message.text,
        }
    if isinstance(message, AIMessage):
        converted: dict[str, Any] = {"role": "assistant", "content": message.text}
        if message.tool_calls:
            converted["tool_calls"] = [
                {
                    "id": call.get("id") or "",
                    "type": "function",
                    "function": {"name": call["name"], "arguments": json.dumps(call["args"])},
                }
                for call in message.tool_calls
            ]
        return converted
    role = "system" if isinstance(message, SystemMessage) else "user"
    return {"role": role, "content": message.text}


def to_openai_tool_choice(tool_choice: Any) -> Any:
    """LangChain spellings ("any", a bare tool name) to the pool's OpenAI ones."""
    if tool_choice in (None, "auto", "none", "required") or isinstance(tool_choice, dict):
        return tool_choice
    if tool_choice in ("any", True):
        return "required"
    return {"type": "function", "function": {"name": str(tool_choice)}}


class OpenAIToolsChatModel(AsyncOnlyChatModel):
    """A chat model that takes tools in OpenAI's format (the pool and model servers)."""

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Offer `tools`: they reach `_astream` as `tools=` in OpenAI's format."""
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        return self.bind(tools=formatted, tool_choice=to_openai_tool_choice(tool_choice), **kwargs)


class PoolChatModel(OpenAIToolsChatModel):
    """Chat model backed by `InferenceClient`; only the async API is available. The pool
    constrains tool calls to the offered schemas with a grammar."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: InferenceClient
    sampling: dict[str, Any] = Field(default_factory=dict)
    scope: str = ""
    # The conversation's key, so its turns reach the worker caching it; per call too:
    # `model.astream(messages, affinity="conv-key")`.
    affinity: str = ""
    # The model that must answer, as the pool's workers announce it (empty: any).
    model: str = ""

    @property
    def _llm_type(self) -> str:
        return "llama-cpp-pool"

    def _sampling_for(self, stop: list[str] | None, kwargs: dict[str, Any]) -> dict[str, Any]:
        values = dict(self.sampling)
        values.update({key: value for key, value in kwargs.items() if key in SAMPLING_KEYS})
        if stop:
            values["stop"] = list(stop)
        return values

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        payload = [to_openai_message(message) for message in messages]
        sampling = self._sampling_for(stop, kwargs)
        stream = self.client.stream(
            payload,
            sampling,
            scope=str(kwargs.get("scope") or self.scope),
            tools=kwargs.get("tools"),
            tool_choice=kwargs.get("tool_choice"),
            affinity=str(kwargs.get("affinity") or self.affinity),
            model=self.model,
        )
        async for chunk in stream:
            if chunk.kind == "tool_call":
                call = tool_call_chunk(
                    name=chunk.tool_name, args=chunk.text, id=chunk.tool_call_id, index=0
                )
                yield ChatGenerationChunk(
                    message=AIMessageChunk(content="", tool_call_chunks=[call])
                )
            elif chunk.kind == "delta":
                piece = ChatGenerationChunk(message=AIMessageChunk(content=chunk.text))
                if run_manager:
                    await run_manager.on_llm_new_token(chunk.text, chunk=piece)
                yield piece
            elif chunk.kind == "done":
                # Through the callbacks too, so a graph's message stream sees the usage.
                done = ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        response_metadata={"finish_reason": chunk.finish_reason},
                        usage_metadata={
                            "input_tokens": chunk.usage.get("prompt_tokens", 0),
                            "output_tokens": chunk.usage.get("completion_tokens", 0),
                            "total_tokens": chunk.usage.get("prompt_tokens", 0)
                            + chunk.usage.get("completion_tokens", 0),
                        },
                    )
                )
                if run_manager:
                    await run_manager.on_llm_new_token("", chunk=done)
                yield done
