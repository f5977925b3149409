"""What `python -m bot serve` runs: one adapter per chat platform, sharing one `App`."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass

from bot.chat_service import ChatService
from bot.commands import CommandHandler
from bot.docs_commands import DocsCommands


class PlatformAdapter(ABC):
    """Connects one chat platform to the app's chat service and commands.

    A platform module only translates: its events into a `Scope` plus text or a command,
    and the delivery layer's send/edit/typing calls into its library's.
    """

    name: str  # "telegram", "discord": also the `Scope.platform` of its requests

    @abstractmethod
    async def run(self, stopping: asyncio.Event) -> None:
        """Connect and serve until `stopping` is set; then stop taking new messages, wait
        (briefly) for the replies in flight to be delivered, disconnect and return.

        The runner ends every reply in flight with a short note (via
        `ChatService.shutdown`) right after setting `stopping`.
        """


@dataclass(frozen=True)
class BotCore:
    """What every platform adapter talks to: the platform-neutral core of the bot."""

    chat: ChatService
    commands: CommandHandler
    docs: DocsCommands | None = None
