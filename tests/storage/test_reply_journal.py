"""The reply journal's entries in Redis: written, read back, dropped, expiring."""

from __future__ import annotations

import redis.asyncio as aioredis

from storage.reply_journal import JournalEntry, ReplyJournalStore, journal_key


async def test_an_entry_is_read_back_as_written_and_dropped(redis_client: aioredis.Redis) -> None:
    store = ReplyJournalStore(redis_client)
    key = journal_key("telegram:1:update", "42")
    entry = JournalEntry(
        messages=[("101", "first part"), ("102", "second")],
        text="first part second",
        job_id="job-1",
        job_base="first ",
        conversation="telegram:-5:-5",
    )
    await store.save(key, entry)
    assert await store.load(key) == entry
    await store.drop(key)
    assert await store.load(key) is None


async def test_an_entry_left_by_a_crash_expires(redis_client: aioredis.Redis) -> None:
    store = ReplyJournalStore(redis_client, ttl_s=30)
    key = journal_key("discord:x:message", "7")
    await store.save(key, JournalEntry(text="cut"))
    assert 0 < await redis_client.pttl(key) <= 30_000


async def test_an_unreadable_entry_is_ignored(redis_client: aioredis.Redis) -> None:
    store = ReplyJournalStore(redis_client)
    key = journal_key("telegram:1:update", "43")
    await redis_client.set(key, "{not json")
    assert await store.load(key) is None
    await redis_client.set(key, '{"messages": 5}')
    assert await store.load(key) is None
