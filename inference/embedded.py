"""Runs a worker inside the app, so one process serves everything on a laptop."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from types import TracebackType

from inference.engine import LlamaEngine
from inference.worker import Worker, WorkerConfig


class EmbeddedWorker:
    def __init__(
        self, redis_url: str, model_path: Path, *, slots: int, n_ctx: int, name: str = ""
    ) -> None:
        factory = functools.partial(LlamaEngine, model_path, n_ctx=n_ctx)
        config = WorkerConfig(redis_url=redis_url, slots=slots, name=name)
        self.worker = Worker(config, factory, model_name=model_path.stem)

    async def __aenter__(self) -> EmbeddedWorker:
        await asyncio.to_thread(self.worker.start)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await asyncio.to_thread(self.worker.stop)
