"""A LangChain chat model that generates through the worker pool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.outputs import ChatGenerationChunk
from pydantic import ConfigDict, Field

from inference.async_chat_model import AsyncOnlyChatModel
from inference.client import InferenceClient

# Sampling keys a caller may pass per call (`model.astream(messages, temperature=0.2)`).
SAMPLING_KEYS = frozenset(
    {"temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens", "seed", "stop"}
)


def to_openai_message(message: BaseMessage) -> dict[str, Any]:
    role = {
        SystemMessage: "system",
        HumanMessage: "user",
        AIMessage: "assistant",
        AIMessageChunk: "assistant",
        ToolMessage: "tool",
    }.get(type(message), "user")
    return {"role": role, "content": message.text}


class PoolChatModel(AsyncOnlyChatModel):
    """Chat model backed by `InferenceClient`; only the async API is available."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    client: InferenceClient
    sampling: dict[str, Any] = Field(default_factory=dict)
    scope: str = ""

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
        async for chunk in self.client.stream(payload, sampling, scope=self.scope):
            if chunk.kind == "delta":
                piece = ChatGenerationChunk(message=AIMessageChunk(content=chunk.text))
                if run_manager:
                    await run_manager.on_llm_new_token(chunk.text, chunk=piece)
                yield piece
            elif chunk.kind == "done":
                yield ChatGenerationChunk(
                    message=AIMessageChunk(
                        content="",
                        response_metadata={"finish_reason": chunk.finish_reason},
                        usage_metadata={
                            "input_tokens": 0,
                            "output_tokens": chunk.usage.get("completion_tokens", 0),
                            "total_tokens": chunk.usage.get("completion_tokens", 0),
                        },
                    )
                )
