"""Runs a worker inside the app, so one process serves everything on a laptop."""

from __future__ import annotations

import asyncio
import functools
from pathlib import Path
from types import TracebackType

from inference.llama_backend import BackendConfig
from inference.model_runner import ModelRunner
from inference.worker import Worker, WorkerConfig


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
        chat_template: str | None = None,
        tool_format: str = "auto",
    ) -> None:
        backend = BackendConfig(model_path=model_path, slots=slots, ctx_per_slot=ctx_per_slot)
        config = WorkerConfig(redis_url=redis_url, name=name, model_name=model_name)
        runner = functools.partial(
            ModelRunner,
            backend,
            host_cache_mb=host_cache_mb,
            chat_template=chat_template,
            tool_format=tool_format,
        )
        self.worker = Worker(config, runner)

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
