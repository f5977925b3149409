"""Each platform event is handled once, whichever process sees it and however often.

Platforms deliver an event again: Telegram an update whose offset was not confirmed
(after a restart, or a webhook call that was not answered 200), Discord the events of
a resumed session; and with several bot processes two may see the same event. Before
any work, a process claims the event under its id (Telegram `update_id`, a Discord
message or interaction id):

* `CLAIMED`: it is this process's to handle. The claim is a lease: the handler
  refreshes it while it works and marks it `done` at the end. A process that dies
  stops refreshing, the claim expires, and the next delivery of the event is
  claimed afresh, so a crash never loses an event for good;
* `DONE`: it was handled; drop it;
* `BUSY`: another process is handling it now; `retry_in_s` says when its lease runs
  out, which is when to look again in case that process died.

A claim made with the event's payload is also listed as pending until it is finished:
when its holder dies (its lease runs out) or gives it up while stopping, any process
calling `take_over` claims it and handles it again, so an event whose delivery was
already confirmed to the platform is not lost with the process that took it.

Memory is bounded: a claim is one small key that expires (`done_ttl_s` once handled,
the lease's ttl while handled), so the keys held are at most the events of the last
`done_ttl_s` seconds; a pending entry lives only while its event is being handled.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass, replace

import redis.asyncio as aioredis

from storage.leases import milliseconds

CLAIM_PREFIX = "claim:"
# Per source: the events claimed and not yet handled, scored by when their lease ends, and
# each one's payload, so that another process can handle an event whose holder died.
PENDING_PREFIX = "claims:pending:"
PAYLOAD_PREFIX = "claims:payload:"

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# KEYS: claim, pending, payloads. ARGV: token, lease (ms), event id, payload ('' for none).
# Returns {state, ms until the holder's lease ends}.
_CLAIM = (
    _NOW
    + """
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  if ARGV[4] ~= '' then
    redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[3])
    redis.call('HSET', KEYS[3], ARGV[3], ARGV[4])
  end
  return {'claimed', 0}
end
if holder == 'done' then return {'done', 0} end
if holder == ARGV[1] then return {'claimed', 0} end
return {'busy', redis.call('PTTL', KEYS[1])}
"""
)

# KEYS: claim, pending. ARGV: token, lease (ms), event id. A lease that ran out while
# nobody took the event over is still the holder's to extend (it was only late).
_REFRESH = (
    _NOW
    + """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('ZADD', KEYS[2], 'XX', now + tonumber(ARGV[2]), ARGV[3])
  return 1
end
return 0
"""
)

# KEYS: claim, pending, payloads. ARGV: token, how long a handled claim is remembered
# (ms), event id. Only the holder finishes (or a late one, while nobody took it over).
_FINISH = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] or not holder then
  redis.call('ZREM', KEYS[2], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[3])
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: claim, pending. ARGV: token, event id. Given up unhandled (the process is
# stopping): due at once for any process to take over.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZADD', KEYS[2], 'XX', 0, ARGV[2])
  return 1
end
return 0
"""

# KEYS: pending, payloads. ARGV: token, lease (ms), claim key prefix, at most.
# The events whose holder's lease ran out, claimed anew for the caller: {id, payload}...
_TAKE_OVER = (
    _NOW
    + """
local taken = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, ARGV[4])) do
  local claim = ARGV[3] .. id
  local holder = redis.call('GET', claim)
  if holder == 'done' then
    redis.call('ZREM', KEYS[1], id)
    redis.call('HDEL', KEYS[2], id)
  elseif not holder then
    redis.call('SET', claim, ARGV[1], 'PX', ARGV[2])
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), id)
    table.insert(taken, id)
    table.insert(taken, redis.call('HGET', KEYS[2], id) or '')
  end
end
return taken
"""
)


class ClaimState(enum.Enum):
    CLAIMED = "claimed"
    DONE = "done"
    BUSY = "busy"


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    source: str
    event_id: str
    token: str
    retry_in_s: float = 0.0  # for BUSY: when the other holder's lease ends

    @property
    def key(self) -> str:
        return f"{CLAIM_PREFIX}{self.source}:{self.event_id}"

    @property
    def pending_key(self) -> str:
        return f"{PENDING_PREFIX}{self.source}"

    @property
    def payload_key(self) -> str:
        return f"{PAYLOAD_PREFIX}{self.source}"


class IntakeClaims:
    """Claims on platform events, shared by every process on one Redis."""

    def __init__(
        self, redis: aioredis.Redis, *, lease_s: float = 30.0, done_ttl_s: float = 24 * 3600
    ) -> None:
        if not lease_s > 0 or not done_ttl_s > 0:
            raise ValueError("lease_s and done_ttl_s must be positive numbers of seconds")
        self.lease_s = lease_s
        self.done_ttl_s = done_ttl_s
        self._claim = redis.register_script(_CLAIM)
        self._refresh = redis.register_script(_REFRESH)
        self._finish = redis.register_script(_FINISH)
        self._release = redis.register_script(_RELEASE)
        self._take_over = redis.register_script(_TAKE_OVER)

    async def claim(
        self, source: str, event_id: str | int, payload: str = "", token: str | None = None
    ) -> Claim:
        """Claim event `event_id` of `source` (e.g. "telegram:777:update", a bot's updates).
        With a `payload` (the event, serialised), the event can be handled by another
        process if this one dies before finishing it (`take_over`)."""
        claim = Claim(ClaimState.CLAIMED, source, str(event_id), token or secrets.token_hex(12))
        raw_state, left_ms = await self._claim(
            keys=[claim.key, claim.pending_key, claim.payload_key],
            args=[claim.token, milliseconds(self.lease_s), claim.event_id, payload],
        )
        state = ClaimState(raw_state.decode() if isinstance(raw_state, bytes) else raw_state)
        return replace(claim, state=state, retry_in_s=max(0, int(left_ms)) / 1000)

    async def refresh(self, claim: Claim) -> bool:
        """Extend the lease of a claim being handled; False if it was lost (it expired)."""
        refreshed = await self._refresh(
            keys=[claim.key, claim.pending_key],
            args=[claim.token, milliseconds(self.lease_s), claim.event_id],
        )
        return bool(refreshed)

    async def finish(self, claim: Claim) -> bool:
        """Mark the event handled: every later delivery of it is `DONE`."""
        finished = await self._finish(
            keys=[claim.key, claim.pending_key, claim.payload_key],
            args=[claim.token, milliseconds(self.done_ttl_s), claim.event_id],
        )
        return bool(finished)

    async def release(self, claim: Claim) -> None:
        """Give the event up unhandled (stopping): it is claimed afresh by its next
        delivery, or taken over at once by a process that looks (`take_over`)."""
        await self._release(keys=[claim.key, claim.pending_key], args=[claim.token, claim.event_id])

    async def take_over(self, source: str, limit: int = 10) -> list[tuple[Claim, str]]:
        """Claim the events of `source` whose holder died (or gave them up) before
        handling them: each with its payload, to handle again."""
        token = secrets.token_hex(12)
        raw = await self._take_over(
            keys=[f"{PENDING_PREFIX}{source}", f"{PAYLOAD_PREFIX}{source}"],
            args=[token, milliseconds(self.lease_s), f"{CLAIM_PREFIX}{source}:", limit],
        )
        values = [item.decode() if isinstance(item, bytes) else str(item) for item in raw]
        return [
            (Claim(ClaimState.CLAIMED, source, event_id, token), payload)
            for event_id, payload in zip(values[::2], values[1::2], strict=True)
        ]
