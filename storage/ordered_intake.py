"""Events recorded durably, then handled one at a time per lane in event-id order.

A webhook answers the platform as soon as an event is recorded; the work comes later and
may be done by any process. Each event is recorded into its lane (for Telegram, its
chat) as a sorted set scored by the event's id, with its payload beside it, so the
events of one lane come out in id order whatever order the posts arrived in, and an
event posted twice is recorded once while it waits.

Whoever handles a lane's events holds the lane's lease (a key with its random token and
an expiry, refreshed while it works): one process at a time takes a lane's events,
head first, and removes each once handled. A holder that dies stops refreshing, the
lease runs out, and the lane is listed by `unheld` for another process to take over from
the event the dead one had not finished. Handing a lane back happens only when it is
empty (`release_if_empty`, one script), so an event recorded while its lane's holder
was about to leave is either seen by that holder or finds the lane free.

Memory is bounded by the events waiting: a handled event is removed with its payload,
and an empty lane leaves nothing behind but its (expiring) lease.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from storage.leases import REFRESH_IF_HELD, RELEASE_IF_HELD, milliseconds

INTAKE_PREFIX = "intake:"

# KEYS: the lane's events, the payloads, the lanes with events. ARGV: event id (numeric),
# payload, lane. Returns 1 when recorded, 0 when it was waiting already.
_RECORD = """
local added = redis.call('ZADD', KEYS[1], 'NX', ARGV[1], ARGV[1])
if added == 1 then
  redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
end
redis.call('SADD', KEYS[3], ARGV[3])
return added
"""

# KEYS: the lane's events, the payloads. Returns {id, payload} of the first event, or {}.
# An event whose payload is missing cannot be handled: it is dropped.
_HEAD = """
while true do
  local first = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if not first then return {} end
  local payload = redis.call('HGET', KEYS[2], first)
  if payload then return {first, payload} end
  redis.call('ZREM', KEYS[1], first)
end
"""

# KEYS: the lane's events, the payloads. ARGV: event id.
_DONE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return 1
"""

# KEYS: the lane's events, the lanes with events, the lease. ARGV: token, lane.
# Hands the lane back only when nothing waits in it: 1 when handed back.
_RELEASE_IF_EMPTY = """
if redis.call('ZCARD', KEYS[1]) > 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[2])
if redis.call('GET', KEYS[3]) == ARGV[1] then redis.call('DEL', KEYS[3]) end
return 1
"""

# KEYS: the lanes with events. ARGV: lease key prefix, events key prefix, at most.
# The lanes that have events and no holder; lanes left empty are forgotten.
_UNHELD = """
local found = {}
for _, lane in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[2] .. lane) == 0 then
    redis.call('SREM', KEYS[1], lane)
  elseif redis.call('EXISTS', ARGV[1] .. lane) == 0 then
    table.insert(found, lane)
    if #found >= tonumber(ARGV[3]) then break end
  end
end
return found
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


@dataclass(frozen=True)
class Waiting:
    """An event taken from the head of a lane, to handle and then mark `done`."""

    event_id: int
    payload: str


class OrderedIntake:
    """The recorded events of one source (e.g. "telegram:777:update"), shared by every
    process on one Redis."""

    def __init__(self, redis: aioredis.Redis, source: str, *, lease_s: float = 10.0) -> None:
        if not lease_s > 0:
            raise ValueError("lease_s must be a positive number of seconds")
        self._redis = redis
        self.source = source
        self.lease_s = lease_s
        self._prefix = f"{INTAKE_PREFIX}{source}:"
        self._record = redis.register_script(_RECORD)
        self._head = redis.register_script(_HEAD)
        self._done = redis.register_script(_DONE)
        self._release_if_empty = redis.register_script(_RELEASE_IF_EMPTY)
        self._unheld = redis.register_script(_UNHELD)
        self._refresh = redis.register_script(REFRESH_IF_HELD)
        self._release = redis.register_script(RELEASE_IF_HELD)

    def _events(self, lane: str) -> str:
        return f"{self._prefix}events:{lane}"

    def _lease(self, lane: str) -> str:
        return f"{self._prefix}holder:{lane}"

    @property
    def _payloads(self) -> str:
        return f"{self._prefix}payloads"

    @property
    def _lanes(self) -> str:
        return f"{self._prefix}lanes"

    async def record(self, lane: str, event_id: int, payload: str) -> bool:
        """Record an event in its lane; False when it was waiting there already."""
        added = await self._record(
            keys=[self._events(lane), self._payloads, self._lanes], args=[event_id, payload, lane]
        )
        return bool(added)

    async def unheld(self, limit: int = 100) -> list[str]:
        """Lanes with events waiting and nobody holding them (their holder died, or
        nobody has taken them yet)."""
        raw = await self._unheld(
            keys=[self._lanes],
            args=[f"{self._prefix}holder:", f"{self._prefix}events:", limit],
        )
        return [_text(lane) for lane in raw]

    async def waiting(self, lane: str) -> int:
        return int(await self._redis.zcard(self._events(lane)))

    async def take(self, lane: str) -> LaneHold | None:
        """Hold `lane` if nobody does; None when another process holds it."""
        token = secrets.token_hex(12)
        taken = await self._redis.set(
            self._lease(lane), token, nx=True, px=milliseconds(self.lease_s)
        )
        return LaneHold(self, lane, token) if taken else None


class LaneHold:
    """One process's hold on one lane: it alone takes the lane's events while it holds it."""

    def __init__(self, intake: OrderedIntake, lane: str, token: str) -> None:
        self._intake = intake
        self.lane = lane
        self.token = token

    async def head(self) -> Waiting | None:
        """The lane's first event (lowest id), left in place until `done`."""
        intake = self._intake
        raw = await intake._head(keys=[intake._events(self.lane), intake._payloads])
        if not raw:
            return None
        event_id, payload = (_text(value) for value in raw)
        return Waiting(int(event_id), payload)

    async def done(self, event_id: int) -> None:
        intake = self._intake
        await intake._done(keys=[intake._events(self.lane), intake._payloads], args=[event_id])

    async def refresh(self) -> bool:
        """Extend the lease; False when it is no longer ours (it ran out)."""
        intake = self._intake
        refreshed = await intake._refresh(
            keys=[intake._lease(self.lane)], args=[self.token, milliseconds(intake.lease_s)]
        )
        return bool(refreshed)

    async def release_if_empty(self) -> bool:
        """Hand the lane back if no event waits in it; False (still held) otherwise."""
        intake = self._intake
        released = await intake._release_if_empty(
            keys=[intake._events(self.lane), intake._lanes, intake._lease(self.lane)],
            args=[self.token, self.lane],
        )
        return bool(released)

    async def release(self) -> None:
        """Hand the lane back with events still waiting (stopping): another process
        takes it over at once (`unheld`)."""
        intake = self._intake
        await intake._release(keys=[intake._lease(self.lane)], args=[self.token])
