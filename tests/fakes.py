"""Scripted stand-ins that make agent and chat-service tests deterministic."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.messages import AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from pydantic import Field

from bot.reply_sink import ReplySink
from inference.async_chat_model import AsyncOnlyChatModel


class ScriptedChatModel(AsyncOnlyChatModel):
    """Answers with queued replies, word by word, and records every call it gets.

    `enqueue("text")` adds a reply, `enqueue(SomeError())` a failure; with none queued it
    answers "ok". `token_delay_s` makes streaming slow enough to cancel mid-reply.
    """

    replies: list[str | Exception] = Field(default_factory=list)
    calls: list[dict[str, Any]] = Field(default_factory=list)
    token_delay_s: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def enqueue(self, *replies: str | Exception) -> None:
        self.replies.extend(replies)

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.calls.append({"messages": list(messages), "kwargs": dict(kwargs)})
        reply = self.replies.pop(0) if self.replies else "ok"
        if isinstance(reply, Exception):
            raise reply
        words = reply.split(" ")
        for index, word in enumerate(words):
            if self.token_delay_s:
                await asyncio.sleep(self.token_delay_s)
            text = word if index == len(words) - 1 else word + " "
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
            if run_manager:
                await run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk


class RecordingSink(ReplySink):
    """Keeps everything a reply did, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.started = asyncio.Event()
        self.first_text = asyncio.Event()

    async def start(self) -> None:
        self.events.append(("start", ""))
        self.started.set()

    async def append(self, text: str) -> None:
        self.events.append(("append", text))
        self.first_text.set()

    async def tool_status(self, name: str, detail: str) -> None:
        self.events.append(("tool", f"{name}: {detail}"))

    async def finish(self, note: str = "") -> None:
        self.events.append(("finish", note))

    async def fail(self, message: str) -> None:
        self.events.append(("fail", message))

    @property
    def text(self) -> str:
        return "".join(text for kind, text in self.events if kind == "append")

    @property
    def failure(self) -> str | None:
        return next((text for kind, text in self.events if kind == "fail"), None)

    @property
    def finish_note(self) -> str | None:
        return next((text for kind, text in self.events if kind == "finish"), None)
