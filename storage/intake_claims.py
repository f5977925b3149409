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

Memory is bounded: a claim is one small key that expires (`done_ttl_s` once handled,
the lease's ttl while handled), so the keys held are at most the events of the last
`done_ttl_s` seconds.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from storage.leases import REFRESH_IF_HELD, RELEASE_IF_HELD, milliseconds

CLAIM_PREFIX = "claim:"
_DONE = "done"

# KEYS: claim. ARGV: token, lease (ms). Returns {state, ms until the holder's lease ends}.
_CLAIM = """
local holder = redis.call('GET', KEYS[1])
if not holder then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return {'claimed', 0}
end
if holder == 'done' then return {'done', 0} end
if holder == ARGV[1] then return {'claimed', 0} end
return {'busy', redis.call('PTTL', KEYS[1])}
"""

# KEYS: claim. ARGV: token, how long a handled claim is remembered (ms).
_FINISH = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
  return 1
end
return 0
"""


class ClaimState(enum.Enum):
    CLAIMED = "claimed"
    DONE = "done"
    BUSY = "busy"


@dataclass(frozen=True)
class Claim:
    state: ClaimState
    key: str
    token: str
    retry_in_s: float = 0.0  # for BUSY: when the other holder's lease ends


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
        self._refresh = redis.register_script(REFRESH_IF_HELD)
        self._finish = redis.register_script(_FINISH)
        self._release = redis.register_script(RELEASE_IF_HELD)

    async def claim(self, source: str, event_id: str | int, token: str | None = None) -> Claim:
        """Claim event `event_id` of `source` (e.g. "telegram:777:update", a bot's updates)."""
        key = f"{CLAIM_PREFIX}{source}:{event_id}"
        token = token or secrets.token_hex(12)
        raw_state, left_ms = await self._claim(keys=[key], args=[token, milliseconds(self.lease_s)])
        state = ClaimState(raw_state.decode() if isinstance(raw_state, bytes) else raw_state)
        return Claim(state, key, token, max(0, int(left_ms)) / 1000)

    async def refresh(self, claim: Claim) -> bool:
        """Extend the lease of a claim being handled; False if it was lost (it expired)."""
        refreshed = await self._refresh(
            keys=[claim.key], args=[claim.token, milliseconds(self.lease_s)]
        )
        return bool(refreshed)

    async def finish(self, claim: Claim) -> bool:
        """Mark the event handled: every later delivery of it is `DONE`."""
        return bool(
            await self._finish(keys=[claim.key], args=[claim.token, milliseconds(self.done_ttl_s)])
        )

    async def release(self, claim: Claim) -> None:
        """Give the event up unhandled (stopping): the next delivery is claimed afresh."""
        await self._release(keys=[claim.key], args=[claim.token])
