"""What `python -m bot serve` runs: one adapter per chat platform, sharing one `App`."""

from __future__ import annotations

import asyncio
import logging
from abc import ABC, abstractmethod
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from bot.core import BotCore

log = logging.getLogger(__name__)


class PlatformAdapter(ABC):
    """Connects one chat platform to the app's chat service and commands.

    A platform module only translates: its events into neutral requests for
    `BotCore.handle`, and the delivery layer's send/edit/typing calls into its library's.
    """

    name: str  # "telegram", "discord": also the `Scope.platform` of its requests

    @abstractmethod
    async def run(self, stopping: asyncio.Event) -> None:
        """Connect and serve until `stopping` is set; then stop taking new messages, wait
        (briefly) for the replies in flight to be delivered, disconnect and return.

        The runner ends every reply in flight with a short note (via
        `ChatService.shutdown`) right after setting `stopping`.
        """


class InFlight:
    """The tasks an adapter is answering with, so that stopping can wait for the replies
    they are delivering (for a bounded time) and tests can wait until all are done."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Answer in a task of its own (the platform's event loop keeps reading)."""
        task = asyncio.create_task(work)
        self._add(task)
        task.add_done_callback(self._discard)

    @contextmanager
    def current(self) -> Iterator[None]:
        """Count the running task (one the platform library started) while in the block."""
        task = asyncio.current_task()
        if task is None:
            yield
            return
        self._add(task)
        try:
            yield
        finally:
            self._discard(task)

    async def drained(self) -> None:
        """Return once nothing is being answered."""
        await self._idle.wait()

    async def finish(self, grace_s: float) -> None:
        """Wait up to `grace_s` for the tasks (already told to wrap up); cancel the rest."""
        pending = {task for task in self._tasks if task is not asyncio.current_task()}
        if not pending:
            return
        _, late = await asyncio.wait(pending, timeout=grace_s)
        for task in late:
            task.cancel()
        if late:
            log.warning("%d replies did not finish delivering in time", len(late))
            await asyncio.wait(late, timeout=1.0)

    def _add(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)
        self._idle.clear()

    def _discard(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not self._tasks:
            self._idle.set()


__all__ = ["BotCore", "InFlight", "PlatformAdapter"]
