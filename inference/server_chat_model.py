"""A LangChain chat model that generates on an OpenAI-compatible model server.

The agent sees the same thing as with the pool: streamed text, tool calls (the server's
native ones; it constrains them as it does), per-call sampling settings. Closing the
stream early (a cancelled answer) closes the HTTP response, which stops the server
generating. Every failure becomes a `ModelServerError` naming the server, logged for
the operator and shown to the person."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx2
import openai
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.outputs import ChatGenerationChunk
from pydantic import ConfigDict, Field

from inference.chat_model import SAMPLING_KEYS, OpenAIToolsChatModel, to_openai_message
from inference.errors import ModelServerError
from inference.model_server import STANDARD_SAMPLING, ModelServer, explain

log = logging.getLogger(__name__)


class ServerChatModel(OpenAIToolsChatModel):
    """Chat model on `server`; only the async API is available."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    server: ModelServer
    sampling: dict[str, Any] = Field(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "openai-compatible-server"

    def request(
        self, messages: list[BaseMessage], stop: list[str] | None, **kwargs: Any
    ) -> dict[str, Any]:
        """The `chat.completions.create` arguments for one call."""
        values = dict(self.sampling)
        values.update({key: value for key, value in kwargs.items() if key in SAMPLING_KEYS})
        if stop:
            values["stop"] = list(stop)
        if values.get("seed", 0) == -1:  # ours for "random"; servers want no seed instead
            del values["seed"]
        extra_names = self.server.extra_names()
        arguments: dict[str, Any] = {
            key: value for key, value in values.items() if key in STANDARD_SAMPLING
        }
        if "stop" in arguments:
            arguments["stop"] = list(arguments["stop"]) or None
        arguments.update(
            model=self.server.model or "default",
            messages=[to_openai_message(message) for message in messages],
            stream=True,
            stream_options={"include_usage": True},
            extra_body={
                extra_names[key]: value for key, value in values.items() if key in extra_names
            },
        )
        if kwargs.get("tools"):
            arguments["tools"] = kwargs["tools"]
            if kwargs.get("tool_choice") is not None:
                arguments["tool_choice"] = kwargs["tool_choice"]
        return arguments

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        url = self.server.url
        try:
            stream = await self.server.client.chat.completions.create(
                **self.request(messages, stop, **kwargs)
            )
        except (openai.APIError, httpx2.HTTPError, ValueError) as exc:
            raise self._failed(exc) from exc
        events = 0
        try:
            async for event in stream:
                events += 1
                for piece in _pieces(event):
                    if run_manager and piece.message.content:
                        await run_manager.on_llm_new_token(str(piece.message.content), chunk=piece)
                    yield piece
        except (openai.APIError, httpx2.HTTPError, ValueError) as exc:
            raise self._failed(exc) from exc
        finally:
            # Early (the answer was cancelled): the server stops when the response closes.
            await stream.close()
        if events == 0:
            raise self._failed(
                ModelServerError(
                    f"the model server at {url} sent no answer events "
                    "(does BOT_LLM_BASE_URL point at the API, /v1?)"
                )
            )

    def _failed(self, exc: BaseException) -> ModelServerError:
        error = exc if isinstance(exc, ModelServerError) else explain(exc, self.server.url)
        log.warning("%s", error)
        return error


def _pieces(event: Any) -> list[ChatGenerationChunk]:
    """One streamed completion event as LangChain chunks: text, tool-call pieces, and
    the finish reason and usage where the event carries them."""
    pieces = []
    for choice in event.choices or []:
        delta = choice.delta
        if delta is not None and delta.content:
            pieces.append(ChatGenerationChunk(message=AIMessageChunk(content=delta.content)))
        for call in (delta.tool_calls or []) if delta is not None else []:
            function = call.function
            piece = tool_call_chunk(
                name=function.name if function else None,
                args=function.arguments if function else None,
                id=call.id,
                index=call.index,
            )
            pieces.append(
                ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[piece]))
            )
        if choice.finish_reason:
            metadata = {"finish_reason": choice.finish_reason}
            pieces.append(
                ChatGenerationChunk(message=AIMessageChunk(content="", response_metadata=metadata))
            )
    if event.usage is not None:
        usage = {
            "input_tokens": event.usage.prompt_tokens,
            "output_tokens": event.usage.completion_tokens,
            "total_tokens": event.usage.total_tokens,
        }
        pieces.append(ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage)))  # type: ignore[arg-type]
    return pieces
