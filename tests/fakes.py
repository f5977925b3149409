"""Scripted stand-ins that make agent and chat-service tests deterministic."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import LanguageModelInput
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolCallChunk
from langchain_core.outputs import ChatGenerationChunk
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from bot.reply_sink import ReplySink
from inference.async_chat_model import AsyncOnlyChatModel


class ScriptedChatModel(AsyncOnlyChatModel):
    """Answers with queued replies, word by word, and records every call it gets.

    `enqueue("text")` adds a reply, `enqueue(SomeError())` a failure, and
    `enqueue(tool_call("calculator", expression="2+2"))` (an AIMessage with tool calls) a
    tool-calling reply, streamed the way real models stream them: text first, then
    `tool_call_chunks` with JSON arguments. With none queued it answers "ok".
    `token_delay_s` makes streaming slow enough to cancel mid-reply. `bind_tools` works
    like a real model's: the OpenAI-format tools reach `_astream` as `tools=`, recorded
    in `calls[i]["kwargs"]["tools"]`.
    """

    replies: list[str | Exception | AIMessage] = Field(default_factory=list)
    calls: list[dict[str, Any]] = Field(default_factory=list)
    token_delay_s: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def enqueue(self, *replies: str | Exception | AIMessage) -> None:
        self.replies.extend(replies)

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(tool) for tool in tools]
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        return self.bind(tools=formatted, **kwargs)

    def offered_tools(self, call: int = -1) -> list[str]:
        """Names of the tools bound for call number `call` (the latest by default)."""
        return [tool["function"]["name"] for tool in self.calls[call]["kwargs"].get("tools", [])]

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
        text = reply.text if isinstance(reply, AIMessage) else reply
        words = text.split(" ") if text else []
        for index, word in enumerate(words):
            if self.token_delay_s:
                await asyncio.sleep(self.token_delay_s)
            text = word if index == len(words) - 1 else word + " "
            chunk = ChatGenerationChunk(message=AIMessageChunk(content=text))
            if run_manager:
                await run_manager.on_llm_new_token(text, chunk=chunk)
            yield chunk
        if isinstance(reply, AIMessage):
            for chunk in _tool_call_chunks(reply):
                if run_manager:
                    await run_manager.on_llm_new_token("", chunk=chunk)
                yield chunk
        # Usage as a model server reports it, in the last chunk: about 4 characters a
        # prompt token, one token a word of the reply.
        prompt_tokens = sum(len(message.text) for message in messages) // 4 + 1
        usage = ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": prompt_tokens,
                    "output_tokens": len(words),
                    "total_tokens": prompt_tokens + len(words),
                },
            )
        )
        if run_manager:
            await run_manager.on_llm_new_token("", chunk=usage)
        yield usage


def tool_call(name: str, content: str = "", **args: Any) -> AIMessage:
    """A scripted reply that calls tool `name` with `args` (after saying `content`)."""
    return AIMessage(content, tool_calls=[{"name": name, "args": args, "id": _call_id()}])


def tool_calls(*calls: tuple[str, dict[str, Any]]) -> AIMessage:
    """A scripted reply that calls several tools at once."""
    return AIMessage(
        "", tool_calls=[{"name": name, "args": args, "id": _call_id()} for name, args in calls]
    )


def malformed_tool_call(name: str, raw_arguments: str) -> AIMessage:
    """A scripted reply whose tool arguments are not valid JSON, as small models write."""
    return AIMessage(
        "",
        invalid_tool_calls=[
            {
                "name": name,
                "args": raw_arguments,
                "id": _call_id(),
                "error": None,
                "type": "invalid_tool_call",
            }
        ],
    )


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def _tool_call_chunks(reply: AIMessage) -> list[ChatGenerationChunk]:
    raw: list[tuple[str, str, str | None]] = [
        (call["name"], json.dumps(call["args"]), call["id"]) for call in reply.tool_calls
    ]
    raw += [(bad["name"] or "", bad["args"] or "", bad["id"]) for bad in reply.invalid_tool_calls]
    chunks = []
    for index, (name, arguments, call_id) in enumerate(raw):
        # The name and id first, the arguments in two pieces, as streaming APIs send them.
        half = len(arguments) // 2
        pieces = [
            ToolCallChunk(name=name, args="", id=call_id, index=index, type="tool_call_chunk"),
            ToolCallChunk(
                name=None, args=arguments[:half], id=None, index=index, type="tool_call_chunk"
            ),
            ToolCallChunk(
                name=None, args=arguments[half:], id=None, index=index, type="tool_call_chunk"
            ),
        ]
        chunks += [
            ChatGenerationChunk(message=AIMessageChunk(content="", tool_call_chunks=[piece]))
            for piece in pieces
        ]
    return chunks


@dataclass(frozen=True)
class FakePassage:
    """Shaped like `storage.documents.Passage`."""

    document_id: int
    title: str
    position: int
    text: str
    score: float = 1.0
    source: str = ""


class InMemoryDocuments:
    """A `DocumentSearch` over a dict of scope -> passages; ranks by shared words.

    It records every search, so tests can check which scope was searched.
    """

    def __init__(self, passages: dict[str, list[FakePassage]]) -> None:
        self.passages = passages
        self.searches: list[tuple[str, str, int]] = []

    async def search(self, scope: str, query: str, k: int = 5) -> list[FakePassage]:
        self.searches.append((scope, query, k))
        words = set(query.lower().split())
        ranked = sorted(
            self.passages.get(scope, []),
            key=lambda passage: -len(words & set(passage.text.lower().split())),
        )
        return [passage for passage in ranked if words & set(passage.text.lower().split())][:k]


class RecordingSink(ReplySink):
    """Keeps everything a reply did, in order."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.started = asyncio.Event()
        self.first_text = asyncio.Event()
        self.waiting = asyncio.Event()  # set once the question was shown queued

    async def start(self) -> None:
        if not self.started.is_set():
            self.events.append(("start", ""))
        self.started.set()

    async def append(self, text: str) -> None:
        self.events.append(("append", text))
        self.first_text.set()

    async def queued(self, position: int) -> None:
        await super().queued(position)
        self.waiting.set()

    async def tool_status(self, name: str, detail: str) -> None:
        self.events.append(("tool", f"{name}: {detail}"))

    async def finish(self, note: str = "") -> None:
        self.events.append(("finish", note))

    async def fail(self, message: str) -> None:
        self.events.append(("fail", message))

    @property
    def queued_at(self) -> list[str]:
        """The queue positions shown, as the status lines said them."""
        return [text for kind, text in self.events if kind == "tool" and text.startswith("queue:")]

    @property
    def text(self) -> str:
        return "".join(text for kind, text in self.events if kind == "append")

    @property
    def failure(self) -> str | None:
        return next((text for kind, text in self.events if kind == "fail"), None)

    @property
    def finish_note(self) -> str | None:
        return next((text for kind, text in self.events if kind == "finish"), None)


class SettableClock:
    """Seconds since the epoch that a test moves by hand (it starts on an afternoon, UTC)."""

    def __init__(self, now: float = 1_780_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
