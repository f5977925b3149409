"""Per-level chat settings in Redis, with an audit log of every change.

Admins tune sampling per server, channel or conversation, so each level keeps its own
overrides: one hash per level key (`settings:<level_key>`), each value a JSON string.
Resolution across levels (conversation -> channel -> server -> global) is the bot's
business (`bot.chat_settings`); this module only stores and lists.

Every change is also appended to one stream, `settings:audit`, so "who turned the
temperature up?" has an answer. The change and its audit entry are written by one Lua
script: no reader ever sees a change without its entry, and two admins changing the same
key at once each record the old value they actually replaced.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

logger = logging.getLogger(__name__)

SETTINGS_PREFIX = "settings:"
AUDIT_STREAM = "settings:audit"
# The audit log is for recent history, not an archive: cap it so it cannot grow forever.
AUDIT_MAXLEN = 10_000
# How many audit entries to read per round trip when filtering by level key.
_AUDIT_PAGE = 200

# Server time (not the caller's clock) so entries from several hosts order sensibly.
# Lua's tostring keeps only 14 significant digits, so the fraction is formatted by hand.
_LUA_NOW = """
local t = redis.call('TIME')
local at = t[1] .. '.' .. string.format('%06d', tonumber(t[2]))
"""

# KEYS: settings hash, audit stream. ARGV: name, new JSON, actor, level key, maxlen.
_SET_SCRIPT = (
    _LUA_NOW
    + """
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*',
  'at', at, 'actor', ARGV[3], 'level_key', ARGV[4], 'name', ARGV[1],
  'old', old or '', 'new', ARGV[2])
return old
"""
)

# KEYS: settings hash, audit stream. ARGV: name, actor, level key, maxlen.
# Deleting a key that is not set changes nothing, so it writes no audit entry.
_DELETE_SCRIPT = (
    _LUA_NOW
    + """
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then return false end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
  'at', at, 'actor', ARGV[2], 'level_key', ARGV[3], 'name', ARGV[1],
  'old', old, 'new', '')
return old
"""
)

# KEYS: settings hash, audit stream. ARGV: actor, level key, maxlen.
# Returns the removed hash as a flat [name, value, ...] list.
_CLEAR_SCRIPT = (
    _LUA_NOW
    + """
local flat = redis.call('HGETALL', KEYS[1])
if #flat == 0 then return flat end
redis.call('DEL', KEYS[1])
for i = 1, #flat, 2 do
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*',
    'at', at, 'actor', ARGV[1], 'level_key', ARGV[2], 'name', flat[i],
    'old', flat[i + 1], 'new', '')
end
return flat
"""
)


@dataclass(frozen=True)
class AuditEntry:
    """One recorded change. `old`/`new` are None where the key was unset before/after."""

    id: str  # the stream entry id; orders entries, also across level keys
    at: float  # unix time, from the Redis server's clock
    actor: str
    level_key: str
    name: str
    old: Any | None
    new: Any | None


class RedisSettingsStore:
    """Setting overrides per level key, and their audit log, in one Redis database."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        # register_script does no I/O: it sends EVALSHA, falling back to EVAL once.
        self._set = redis.register_script(_SET_SCRIPT)
        self._delete = redis.register_script(_DELETE_SCRIPT)
        self._clear = redis.register_script(_CLEAR_SCRIPT)

    async def get_levels(self, level_keys: Sequence[str]) -> list[dict[str, Any]]:
        """The overrides stored at each of `level_keys`, in the same order."""
        # MULTI/EXEC: one round trip, and a consistent snapshot across the levels.
        async with self._redis.pipeline(transaction=True) as pipe:
            for level_key in level_keys:
                pipe.hgetall(_hash_key(level_key))
            raw_levels: list[dict[str | bytes, str | bytes]] = await pipe.execute()
        levels: list[dict[str, Any]] = []
        for level_key, raw in zip(level_keys, raw_levels, strict=True):
            values: dict[str, Any] = {}
            for name, encoded in raw.items():
                try:
                    values[_text(name)] = json.loads(encoded)
                except json.JSONDecodeError:
                    # A hand-edited value must not break every chat in the scope: skip it
                    # so the next level's value applies, and say where it is.
                    logger.warning(
                        "ignoring setting %r at %r: not valid JSON (%r); reset it",
                        _text(name),
                        level_key,
                        encoded,
                    )
            levels.append(values)
        return levels

    async def set_value(self, level_key: str, name: str, value: Any, actor: str) -> Any | None:
        """Store `value` under `name` at `level_key`; return the value it replaced, if any."""
        old = await self._set(
            keys=[_hash_key(level_key), AUDIT_STREAM],
            args=[name, _encode(value), actor, level_key, AUDIT_MAXLEN],
        )
        return _decode(old)

    async def delete_value(self, level_key: str, name: str, actor: str) -> Any | None:
        """Remove `name` at `level_key`; return the removed value, or None if it was unset."""
        old = await self._delete(
            keys=[_hash_key(level_key), AUDIT_STREAM],
            args=[name, actor, level_key, AUDIT_MAXLEN],
        )
        return _decode(old)

    async def clear_level(self, level_key: str, actor: str) -> dict[str, Any]:
        """Remove every value at `level_key`; return what was removed."""
        flat = await self._clear(
            keys=[_hash_key(level_key), AUDIT_STREAM],
            args=[actor, level_key, AUDIT_MAXLEN],
        )
        return {_text(flat[i]): _decode(flat[i + 1]) for i in range(0, len(flat), 2)}

    async def audit_entries(
        self, count: int = 50, level_key: str | Collection[str] | None = None
    ) -> list[AuditEntry]:
        """The newest `count` entries, newest first; only those of `level_key` when given.

        `level_key` may also be several keys, e.g. every level a scope resolves through.
        """
        if count <= 0:
            return []
        if level_key is None:
            rows = await self._redis.xrevrange(AUDIT_STREAM, count=count) or []
            return [_entry(entry_id, fields) for entry_id, fields in rows]
        wanted = {level_key} if isinstance(level_key, str) else set(level_key)
        # Streams cannot filter by field, so page backwards until enough match; the
        # stream is capped, so this ends after at most AUDIT_MAXLEN / _AUDIT_PAGE reads.
        found: list[AuditEntry] = []
        upper = "+"
        while len(found) < count:
            rows = await self._redis.xrevrange(AUDIT_STREAM, max=upper, count=_AUDIT_PAGE) or []
            for entry_id, fields in rows:
                entry = _entry(entry_id, fields)
                if entry.level_key in wanted:
                    found.append(entry)
                    if len(found) == count:
                        break
            if len(rows) < _AUDIT_PAGE:
                break
            upper = f"({_text(rows[-1][0] or '')}"  # exclusive bound: Redis 6.2+
        return found


def _hash_key(level_key: str) -> str:
    return f"{SETTINGS_PREFIX}{level_key}"


def _encode(value: Any) -> str:
    # Compact and stable, so equal values are equal strings in Redis.
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _decode(raw: str | bytes | None) -> Any | None:
    """A stored JSON value; None for unset (Lua's false, or '' in audit entries)."""
    if raw is None or raw in ("", b""):
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return _text(raw)  # keep a hand-edited value visible rather than failing


def _text(value: str | bytes) -> str:
    # Works whether or not the client was made with decode_responses=True.
    return value.decode() if isinstance(value, bytes) else value


def _entry(
    entry_id: str | bytes | None, fields: dict[str | bytes, str | bytes] | None
) -> AuditEntry:
    values = {_text(k): v for k, v in (fields or {}).items()}
    return AuditEntry(
        id=_text(entry_id or ""),
        at=float(_text(values.get("at", "0"))),
        actor=_text(values.get("actor", "")),
        level_key=_text(values.get("level_key", "")),
        name=_text(values.get("name", "")),
        old=_decode(values.get("old")),
        new=_decode(values.get("new")),
    )
