"""`/stats`: how busy the bot is, from what every process shares in Redis."""

from __future__ import annotations

from inference.client import InferenceClient
from storage.conversation_lock import ConversationLocks


class BotStats:
    def __init__(self, inference: InferenceClient, locks: ConversationLocks) -> None:
        self._inference = inference
        self._locks = locks

    async def render(self) -> str:
        workers = await self._inference.live_workers()
        waiting = await self._inference.queued_jobs(limit=10_000)
        active = await self._locks.active_count()
        slots = sum(int(worker.get("slots", 0)) for worker in workers)
        busy = sum(int(worker.get("busy", 0)) for worker in workers)
        rate = sum(float(worker.get("tokens_per_s", 0.0)) for worker in workers)
        return "\n".join(
            [
                f"Workers: {len(workers)} live, {busy}/{slots} slots busy",
                f"Queue: {waiting} waiting",
                f"Speed: {rate:.1f} tokens/s (last minute)",
                f"Answers being written: {active}",
            ]
        )
