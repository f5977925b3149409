"""`langgraph-checkpoint-plainredis` against LangGraph's checkpointer conformance suite.

The suite is LangGraph's own contract for checkpointers; running it on the real Redis
server (the embedded one, or BOT_TEST_REDIS_URL) is how we decided to use this saver
instead of writing our own. It also runs with a TTL set, the way the app builds it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.report import ProgressCallbacks
from langgraph_checkpoint_plainredis import AsyncRedisSaver


@pytest.mark.parametrize("ttl", [None, 3600])
async def test_plainredis_passes_the_conformance_suite(
    redis_client: aioredis.Redis, redis_url: str, ttl: int | None
) -> None:
    @checkpointer_test(name=f"plainredis(ttl={ttl})")
    async def plainredis() -> AsyncIterator[AsyncRedisSaver]:
        client = aioredis.from_url(redis_url, decode_responses=False)
        await client.flushdb()
        try:
            yield AsyncRedisSaver(client=client, ttl=ttl)
        finally:
            await client.aclose()

    report = await validate(plainredis, progress=ProgressCallbacks.verbose())
    report.print_report()
    assert report.passed_all_base(), report.to_dict()
