"""Where a streamed reply goes. Each adapter implements one `ReplySink` per reply.

The chat service calls `start()` (perhaps more than once: it is idempotent), `queued()`
while the question waits its turn, then `append()` for each text delta and
`tool_status()` for each tool step, then exactly one of `finish()` or `fail()`.
A sink knows its platform's limits (message length, edit pacing) and uses
`bot.splitter` to cut long replies.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

# The status line's tool name for a question waiting its turn.
QUEUE_STATUS = "queue"


class ReplySink(ABC):
    """One reply in progress, on one platform."""

    @abstractmethod
    async def start(self) -> None:
        """A reply is coming (show "typing...", make a placeholder message)."""

    @abstractmethod
    async def append(self, text: str) -> None:
        """More text of the reply."""

    @abstractmethod
    async def tool_status(self, name: str, detail: str) -> None:
        """The agent is using a tool, e.g. ("web_search", "llama.cpp batching")."""

    @abstractmethod
    async def finish(self, note: str = "") -> None:
        """The reply is complete; `note` (e.g. "stopped by /cancel") may be shown after it."""

    @abstractmethod
    async def fail(self, message: str) -> None:
        """The reply could not be made; `message` says why and what to do."""

    async def queued(self, position: int) -> None:
        """The question waits for the answers before it; `position` 1 means it is next."""
        ahead = "1 answer" if position == 1 else f"{position} answers"
        await self.tool_status(QUEUE_STATUS, f"your question is queued behind {ahead}")

    @property
    def abandoned(self) -> bool:
        """True once nothing more can reach the person (the bot was removed from the chat,
        lost access to the channel): the answer may stop being generated."""
        return False


async def send_text(sink: ReplySink, text: str) -> None:
    """Send a whole, non-streamed reply (command output) through `sink`."""
    await sink.start()
    await sink.append(text)
    await sink.finish()
