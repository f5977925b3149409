"""What `Agent.stream_reply` yields, in order: text as it is written, and tool steps.

Each tool call gives two `ToolEvent`s: one when it starts (`finished=False`, so an
adapter can show "web_search: llama.cpp batching …" while it runs) and one when it ends,
with a short result and the time it took.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer's text."""

    text: str


@dataclass(frozen=True)
class ToolEvent:
    """A tool call the agent made, for adapters that show "searching: ..." lines."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    result: str = ""  # short; empty until finished
    duration_s: float = 0.0
    finished: bool = True
    ok: bool = True
    summary: str = ""  # what the call is about, e.g. the search query

    @property
    def detail(self) -> str:
        """One line for people: what is running, or how it ended."""
        if not self.finished:
            return f"{self.summary} …" if self.summary else "…"
        outcome = self.result if self.ok else f"failed: {self.result}"
        return f"{outcome} ({self.duration_s:.1f} s)"


@dataclass(frozen=True)
class Usage:
    """Tokens one model call of the turn used, as the model server reported them."""

    prompt_tokens: int
    completion_tokens: int

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens


AgentEvent = TextDelta | ToolEvent | Usage
