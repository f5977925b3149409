"""Real bot processes (`tests.bot.platforms.replica_process`) started, watched and killed
by tests."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Self

REPO = Path(__file__).resolve().parents[3]


class ReplicaProcess:
    """One bot process; `state` is the last line it printed ("polling", "ready", ...),
    `since` when it printed it (`time.monotonic()`)."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.state = "starting"
        self.since = time.monotonic()
        self.changed = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, platform: str, *args: str, **env: str) -> Self:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bot.platforms.replica_process",
            platform,
            *args,
            stdout=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONPATH": str(REPO), **env},
            cwd=REPO,
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for line in self.process.stdout:
            self.state = line.decode().strip()
            self.since = time.monotonic()
            self.changed.set()

    async def reaches(self, *states: str) -> str:
        """Wait until the process reports one of `states`."""
        while self.state not in states:
            self.changed.clear()
            await self.changed.wait()
        return self.state

    async def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        await self.process.wait()
        self.state = "killed"

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 30)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        await self._reader
