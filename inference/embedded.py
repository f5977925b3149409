"""Runs a pool worker for the app, so one command serves everything on a laptop.

The worker is a child process (`python -m inference.worker`) watched by the app: a
crash inside llama.cpp (which aborts the process holding it) costs the running jobs a
restart, not the bot. A restarted worker takes the jobs the dead one held back from the
queue (see `inference.worker`). The child stops with the app, and on its own when the
app dies without stopping it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from inference.errors import InferenceError
from inference.protocol import worker_key
from storage.redis_conn import open_redis

log = logging.getLogger(__name__)

# How long a started worker may take to load its model and announce itself.
STARTUP_TIMEOUT_S = 300.0
# Restarts after a crash wait this long, doubling up to the maximum while crashes repeat.
RESTART_DELAY_S = 1.0
MAX_RESTART_DELAY_S = 30.0
# A worker that ran this long before dying counts as healthy: the delay starts over.
HEALTHY_RUN_S = 60.0
STOP_TIMEOUT_S = 60.0


def _log_level() -> str:
    """The app's logging level, for the child to log at the same one."""
    return logging.getLevelName(logging.getLogger().getEffectiveLevel())


class EmbeddedWorker:
    def __init__(
        self,
        redis_url: str,
        model_path: Path,
        *,
        slots: int,
        ctx_per_slot: int,
        name: str = "",
        model_name: str = "",
        host_cache_mb: int = 0,
        chat_template: Path | None = None,
        tool_format: str = "auto",
    ) -> None:
        self.redis_url = redis_url
        self.name = name or f"{socket.gethostname()}-{os.getpid()}-embedded"
        self._args = [
            "--model", str(model_path), "--slots", str(slots),
            "--ctx-per-slot", str(ctx_per_slot), "--name", self.name,
            "--host-cache-mb", str(host_cache_mb), "--tool-format", tool_format,
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        if model_name:
            self._args += ["--model-name", model_name]
        if chat_template is not None:
            self._args += ["--chat-template", str(chat_template)]
        self.process: asyncio.subprocess.Process | None = None
        self.last_message = ""  # the worker's last line on stderr: why it stopped, often
        self._relay: asyncio.Task[None] | None = None
        self.restarts = 0
        self._supervisor: asyncio.Task[None] | None = None
        self._stopping = False

    async def __aenter__(self) -> EmbeddedWorker:
        await self._start()
        self._supervisor = asyncio.create_task(self._supervise(), name="embedded-worker")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stopping = True
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        await self._stop_process()

    async def _start(self) -> None:
        """Start the worker and wait until it announces itself in Redis."""
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "inference.worker", *self._args,
            env={**os.environ, "BOT_REDIS_URL": self.redis_url, "BOT_LOG_LEVEL": _log_level()},
            # Its own session: a Ctrl-C in the terminal reaches the app, which stops it.
            start_new_session=True,
            stderr=asyncio.subprocess.PIPE,
            limit=1 << 20,  # the longest line relayed
        )  # fmt: skip
        self._relay = asyncio.create_task(self._relay_messages(self.process), name="worker-log")
        redis = await open_redis(self.redis_url)
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while not await redis.exists(worker_key(self.name)):
                if self.process.returncode is not None:
                    await self._relay  # its last words, read to the end
                    raise InferenceError(
                        f"the embedded inference worker exited at start-up "
                        f"(status {self.process.returncode}): {self.last_message or 'no message'}"
                    )
                if time.monotonic() > deadline:
                    await self._stop_process()
                    raise InferenceError(
                        f"the embedded inference worker did not start in {STARTUP_TIMEOUT_S:.0f} s"
                    )
                await asyncio.sleep(0.1)
        finally:
            await redis.aclose()

    async def _relay_messages(self, process: asyncio.subprocess.Process) -> None:
        """Pass the worker's messages on to the app's stderr, remembering the last."""
        assert process.stderr is not None
        async for raw in process.stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                self.last_message = line
                print(line, file=sys.stderr)

    async def _supervise(self) -> None:
        """Restart the worker whenever it dies while the app runs."""
        delay = RESTART_DELAY_S
        while True:
            assert self.process is not None
            started = time.monotonic()
            status = await self.process.wait()
            if time.monotonic() - started > HEALTHY_RUN_S:
                delay = RESTART_DELAY_S
            log.error(
                "the embedded inference worker stopped (status %s: %s); restarting in %.0f s",
                status,
                self.last_message or "no message",
                delay,
            )
            await asyncio.sleep(delay)
            delay = min(2 * delay, MAX_RESTART_DELAY_S)
            try:
                await self._start()
                self.restarts += 1
            except Exception as exc:  # logged; the next round tries again
                log.error("the embedded inference worker failed to restart: %s", exc)

    async def _stop_process(self) -> None:
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            process.kill()
            await process.wait()
        if self._relay is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._relay, 5.0)
