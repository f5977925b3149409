"""RedisSettingsStore against a real Redis: values keep their JSON types, changes are audited."""

from __future__ import annotations

import time

import redis.asyncio as aioredis

from storage.settings_store import AUDIT_STREAM, RedisSettingsStore


async def test_values_round_trip_with_their_json_types(redis_client: aioredis.Redis) -> None:
    store = RedisSettingsStore(redis_client)
    assert await store.set_value("server:d:1", "temperature", 0.5, "d:admin") is None
    await store.set_value("server:d:1", "max_tokens", 256, "d:admin")
    await store.set_value("server:d:1", "system_prompt", "Be brief. «ünïcode»", "d:admin")
    await store.set_value("server:d:1", "tools", ["calculator"], "d:admin")
    await store.set_value("global", "temperature", 1.5, "op")

    server, empty, global_ = await store.get_levels(["server:d:1", "channel:none", "global"])

    assert server == {
        "temperature": 0.5,
        "max_tokens": 256,
        "system_prompt": "Be brief. «ünïcode»",
        "tools": ["calculator"],
    }
    assert isinstance(server["max_tokens"], int)
    assert empty == {}
    assert global_ == {"temperature": 1.5}


async def test_set_returns_the_replaced_value(redis_client: aioredis.Redis) -> None:
    store = RedisSettingsStore(redis_client)
    await store.set_value("global", "top_k", 40, "op")
    assert await store.set_value("global", "top_k", 0, "op") == 40
    assert (await store.get_levels(["global"]))[0] == {"top_k": 0}


async def test_delete_and_clear(redis_client: aioredis.Redis) -> None:
    store = RedisSettingsStore(redis_client)
    await store.set_value("conversation:c", "seed", 7, "u")
    await store.set_value("conversation:c", "top_p", 0.9, "u")
    await store.set_value("conversation:c", "min_p", 0.1, "u")

    assert await store.delete_value("conversation:c", "seed", "u") == 7
    assert await store.delete_value("conversation:c", "seed", "u") is None
    assert (await store.get_levels(["conversation:c"]))[0] == {"top_p": 0.9, "min_p": 0.1}

    assert await store.clear_level("conversation:c", "u") == {"top_p": 0.9, "min_p": 0.1}
    assert (await store.get_levels(["conversation:c"]))[0] == {}
    assert await store.clear_level("conversation:c", "u") == {}


async def test_audit_records_set_delete_and_clear_newest_first(
    redis_client: aioredis.Redis,
) -> None:
    store = RedisSettingsStore(redis_client)
    before = time.time()
    await store.set_value("channel:d:1:2", "temperature", 0.3, "d:1 (ann)")
    await store.set_value("channel:d:1:2", "temperature", 0.9, "d:2 (bob)")
    await store.delete_value("channel:d:1:2", "temperature", "d:1 (ann)")
    await store.delete_value("channel:d:1:2", "temperature", "d:1 (ann)")  # unset: no entry
    await store.set_value("channel:d:1:2", "top_k", 10, "d:1 (ann)")
    await store.set_value("channel:d:1:2", "tools", [], "d:1 (ann)")
    await store.clear_level("channel:d:1:2", "d:3 (cy)")

    entries = await store.audit_entries()

    changes = [(e.actor, e.name, e.old, e.new) for e in entries]
    assert changes[:2] in (
        [("d:3 (cy)", "top_k", 10, None), ("d:3 (cy)", "tools", [], None)],
        [("d:3 (cy)", "tools", [], None), ("d:3 (cy)", "top_k", 10, None)],
    )
    assert changes[2:] == [
        ("d:1 (ann)", "tools", None, []),
        ("d:1 (ann)", "top_k", None, 10),
        ("d:1 (ann)", "temperature", 0.9, None),
        ("d:2 (bob)", "temperature", 0.3, 0.9),
        ("d:1 (ann)", "temperature", None, 0.3),
    ]
    assert all(e.level_key == "channel:d:1:2" for e in entries)
    assert all(before - 5 <= e.at <= time.time() + 5 for e in entries)
    assert [e.id for e in entries] == sorted(
        (e.id for e in entries), key=lambda i: tuple(map(int, i.split("-"))), reverse=True
    )
    # Unset is written as an empty field, not as JSON null.
    raw = await redis_client.xrange(AUDIT_STREAM, count=1)
    assert raw and raw[0][1] and raw[0][1]["old"] == ""


async def test_audit_count_and_level_filter(redis_client: aioredis.Redis) -> None:
    store = RedisSettingsStore(redis_client)
    for i in range(5):
        await store.set_value("server:a", "seed", i, "admin")
    # Many entries of another level between them: the filter must page past them.
    for i in range(450):
        await store.set_value("server:b", "seed", i, "admin")
    await store.set_value("global", "seed", 99, "op")

    assert [e.new for e in await store.audit_entries(3)] == [99, 449, 448]

    only_a = await store.audit_entries(50, level_key="server:a")
    assert [e.new for e in only_a] == [4, 3, 2, 1, 0]
    assert [e.new for e in await store.audit_entries(2, level_key="server:a")] == [4, 3]

    several = await store.audit_entries(3, level_key=["server:a", "global"])
    assert [(e.level_key, e.new) for e in several] == [
        ("global", 99),
        ("server:a", 4),
        ("server:a", 3),
    ]
    assert await store.audit_entries(5, level_key="server:none") == []


async def test_a_hand_edited_value_is_skipped_not_fatal(redis_client: aioredis.Redis) -> None:
    store = RedisSettingsStore(redis_client)
    await store.set_value("global", "top_p", 0.5, "op")
    await redis_client.hset("settings:global", "temperature", "not json")
    assert await store.get_levels(["global"]) == [{"top_p": 0.5}]
