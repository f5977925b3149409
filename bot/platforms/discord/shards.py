"""Identify turns shared by the processes of one bot, through Redis.

Each process serves a range of the bot's gateway shards (`DiscordSettings.shard_ids`);
all of them start their sessions within Discord's one limit (`max_concurrency` per
bucket and 5 s). The turns are `storage.identify_gate`'s; if Redis cannot be asked, a
shard waits out a whole window instead, as discord.py does in one process: a late
session is better than one that Discord refuses.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from storage.identify_gate import IDENTIFY_WINDOW_S, IdentifyGate

log = logging.getLogger(__name__)


class SharedIdentifyTurns:
    """`client.IdentifyTurns` for every process of the bot with application id `app_id`."""

    def __init__(
        self,
        redis: aioredis.Redis,
        app_id: int,
        max_concurrency: int,
        window_s: float = IDENTIFY_WINDOW_S,
    ) -> None:
        self.gate = IdentifyGate(redis, f"discord:{app_id}", max_concurrency, window_s=window_s)

    async def wait_turn(self, shard_id: int) -> None:
        try:
            await self.gate.wait_turn(shard_id)
        except (RedisError, OSError) as exc:
            log.warning(
                "could not take shard %d's identify turn in Redis (%s); waiting %.0f s instead",
                shard_id,
                exc,
                self.gate.window_s,
            )
            await asyncio.sleep(self.gate.window_s)
