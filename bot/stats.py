"""`/stats`: how busy the bot is, from what every process shares in Redis."""

from __future__ import annotations

from inference.client import InferenceClient
from inference.model_server import ModelServer
from storage.conversation_lock import ConversationLocks


class BotStats:
    def __init__(
        self,
        inference: InferenceClient,
        locks: ConversationLocks,
        server: ModelServer | None = None,
    ) -> None:
        self._inference = inference
        self._locks = locks
        self._server = server  # answers instead of the pool when set

    async def render(self) -> str:
        if self._server is not None:
            await self._server.probe()  # so the line says how it is now
            active = await self._locks.active_count()
            return f"Backend: {self._server.describe()}\nAnswers being written: {active}"
        workers = await self._inference.live_workers()
        waiting = await self._inference.queued_jobs(limit=10_000)
        active = await self._locks.active_count()
        slots = sum(int(worker.get("slots", 0)) for worker in workers)
        busy = sum(int(worker.get("busy", 0)) for worker in workers)
        rate = sum(float(worker.get("tokens_per_s", 0.0)) for worker in workers)
        return "\n".join(
            [
                "Backend: the worker pool",
                f"Workers: {len(workers)} live, {busy}/{slots} slots busy",
                f"Queue: {waiting} waiting",
                f"Speed: {rate:.1f} tokens/s (last minute)",
                f"Answers being written: {active}",
            ]
        )
