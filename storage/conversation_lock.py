"""One generation at a time per conversation, and a way to stop it, across processes.

Two replies generated at once in one conversation would interleave in the channel and
race to write its memory, so the chat service holds a lease on the conversation while
it generates. Leases live in Redis because the bot may run as several processes (one
per platform, or several behind a load balancer) and a crashed holder must not block a
conversation forever: each lease expires after `ttl_s` unless refreshed.

A "stop" command may arrive at any process, not only the one generating, so
cancellation is a short-lived flag key the generating process polls.
"""

from __future__ import annotations

import math
import secrets
from types import TracebackType

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

LOCK_PREFIX = "lock:conversation:"
CANCEL_PREFIX = "cancel:conversation:"
# Who asked the question being answered: in a shared chat only they (or an admin) stop it.
OWNER_PREFIX = "owner:conversation:"

# KEYS: lock, cancel flag, owner. ARGV: token, ttl (ms), owner.
# A cancel flag left over from an earlier generation must not stop this one; clearing it
# in the same script means no request made after the lease was taken is lost.
_ACQUIRE_SCRIPT = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('DEL', KEYS[2])
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[2])
  return 1
end
return 0
"""

# KEYS: lock, owner. ARGV: token, ttl (ms). Extends the lease only while it is still ours.
_REFRESH_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

# KEYS: lock, cancel flag, owner. ARGV: token. Compare-and-delete: a holder whose lease
# expired and was taken by another must not free (or clear the stop request of) the new
# holder.
_RELEASE_SCRIPT = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return 1
end
return 0
"""

# KEYS: lock, cancel flag. ARGV: flag ttl (ms). Sets the flag only while a lease is held.
_CANCEL_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('SET', KEYS[2], '1', 'PX', ARGV[1])
  return 1
end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class Lease:
    """The right to generate in one conversation until released or expired.

    `async with lease:` releases it on the way out, also on errors and cancellation.
    """

    def __init__(
        self, locks: ConversationLocks, conversation_key: str, token: str, ttl_s: float
    ) -> None:
        self._locks = locks
        self.conversation_key = conversation_key
        self.token = token
        self.ttl_s = ttl_s

    async def refresh(self) -> bool:
        """Restart the lease's ttl; False when it had already expired (and may be taken)."""
        return await self._locks._refresh_lease(self)

    async def release(self) -> bool:
        """Free the conversation; False when the lease had expired (nothing was freed)."""
        return await self._locks._release_lease(self)

    async def cancel_requested(self) -> bool:
        """Whether someone asked to stop this conversation's generation."""
        return await self._locks.cancel_requested(self.conversation_key)

    async def __aenter__(self) -> Lease:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.release()


class ConversationLocks:
    """Leases and stop requests per conversation key, shared by all processes on one Redis."""

    # The chat service refreshes a lease every few seconds while it generates; a process
    # that dies holding one frees its conversation when the lease runs out, so the ttl is
    # what a conversation of a killed process waits before its next answer.
    def __init__(self, redis: aioredis.Redis, ttl_s: float = 12, cancel_ttl_s: float = 60) -> None:
        if not ttl_s > 0 or not cancel_ttl_s > 0:
            raise ValueError("ttl_s and cancel_ttl_s must be positive numbers of seconds")
        self._redis = redis
        self.ttl_s = ttl_s
        # Long enough for the generating process to notice (it polls between tokens), short
        # enough that a flag nobody consumed does not linger.
        self.cancel_ttl_s = cancel_ttl_s
        self._acquire: AsyncScript = redis.register_script(_ACQUIRE_SCRIPT)
        self._refresh: AsyncScript = redis.register_script(_REFRESH_SCRIPT)
        self._release: AsyncScript = redis.register_script(_RELEASE_SCRIPT)
        self._cancel: AsyncScript = redis.register_script(_CANCEL_SCRIPT)

    async def acquire(self, conversation_key: str, owner: str = "") -> Lease | None:
        """A lease on the conversation for `owner`'s question, or None while another
        generation holds it."""
        token = secrets.token_hex(16)
        taken = await self._acquire(
            keys=[
                _lock_key(conversation_key),
                _cancel_key(conversation_key),
                _owner_key(conversation_key),
            ],
            args=[token, _ms(self.ttl_s), owner],
        )
        return Lease(self, conversation_key, token, self.ttl_s) if taken else None

    async def request_cancel(self, conversation_key: str) -> bool:
        """Ask the conversation's generation to stop; False when none is in flight."""
        requested = await self._cancel(
            keys=[_lock_key(conversation_key), _cancel_key(conversation_key)],
            args=[_ms(self.cancel_ttl_s)],
        )
        return bool(requested)

    async def active_count(self, limit: int = 100_000) -> int:
        """Conversations with a generation in flight now, in every process (up to `limit`)."""
        count = 0
        async for _ in self._redis.scan_iter(match=f"{LOCK_PREFIX}*", count=1000):
            count += 1
            if count >= limit:
                break
        return count

    async def owner(self, conversation_key: str) -> str | None:
        """Who asked the question being answered now; None when nothing is."""
        value = await self._redis.get(_owner_key(conversation_key))
        return None if value is None else str(value)

    async def cancel_requested(self, conversation_key: str) -> bool:
        """Whether a stop was requested since the current lease was taken."""
        return bool(await self._redis.exists(_cancel_key(conversation_key)))

    async def _refresh_lease(self, lease: Lease) -> bool:
        refreshed = await self._refresh(
            keys=[_lock_key(lease.conversation_key), _owner_key(lease.conversation_key)],
            args=[lease.token, _ms(lease.ttl_s)],
        )
        return bool(refreshed)

    async def _release_lease(self, lease: Lease) -> bool:
        released = await self._release(
            keys=[
                _lock_key(lease.conversation_key),
                _cancel_key(lease.conversation_key),
                _owner_key(lease.conversation_key),
            ],
            args=[lease.token],
        )
        return bool(released)


def _lock_key(conversation_key: str) -> str:
    return f"{LOCK_PREFIX}{conversation_key}"


def _cancel_key(conversation_key: str) -> str:
    return f"{CANCEL_PREFIX}{conversation_key}"


def _owner_key(conversation_key: str) -> str:
    return f"{OWNER_PREFIX}{conversation_key}"
