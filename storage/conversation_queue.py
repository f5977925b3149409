"""Questions waiting for their turn in a conversation, in order, across processes.

While one answer is being written in a conversation (`ConversationLocks`), the next
questions wait here instead of being turned away. Each waiting question holds a ticket
in the conversation's sorted set, scored by arrival; only the ticket at the head may
take the conversation's lease, so questions are answered in the order they came, even
when several bot processes take them. A waiter keeps its ticket alive by asking for its
position; a ticket whose process died stops being refreshed, expires, and is dropped by
the next caller, so a crash never blocks a queue. The queue is bounded per conversation
and per person.
"""

from __future__ import annotations

import math
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

QUEUE_PREFIX = "queue:conversation:"
SEQUENCE_PREFIX = "queue:sequence:"
ALIVE_PREFIX = "queue:ticket:"

# Tickets whose liveness key expired are dropped first. Then the bounds are checked.
# KEYS: queue, sequence. ARGV: ticket, owner, max waiting, max per owner, alive prefix,
# ticket ttl (ms). Returns {outcome, number}: outcome 1 = joined with `number` ahead,
# -1 = the conversation's queue is full, -2 = the owner has `number` waiting already.
_JOIN_SCRIPT = """
local waiting, mine = 0, 0
for _, ticket in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local owner = redis.call('GET', ARGV[5] .. ticket)
  if not owner then
    redis.call('ZREM', KEYS[1], ticket)
  else
    waiting = waiting + 1
    if owner == ARGV[2] then mine = mine + 1 end
  end
end
if waiting >= tonumber(ARGV[3]) then return {-1, waiting} end
if mine >= tonumber(ARGV[4]) then return {-2, mine} end
local order = redis.call('INCR', KEYS[2])
redis.call('PEXPIRE', KEYS[2], 86400000)
redis.call('ZADD', KEYS[1], order, ARGV[1])
redis.call('PEXPIRE', KEYS[1], 86400000)
redis.call('SET', ARGV[5] .. ARGV[1], ARGV[2], 'PX', ARGV[6])
return {1, waiting}
"""

# KEYS: queue. ARGV: ticket, alive prefix, ticket ttl (ms). Refreshes the ticket, drops
# dead tickets ahead of it, and returns how many wait ahead (-1: the ticket is gone).
_AHEAD_SCRIPT = """
if redis.call('PEXPIRE', ARGV[2] .. ARGV[1], ARGV[3]) == 0 then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return -1
end
local rank = redis.call('ZRANK', KEYS[1], ARGV[1])
if not rank then return -1 end
if rank == 0 then return 0 end
local ahead = 0
for _, ticket in ipairs(redis.call('ZRANGE', KEYS[1], 0, rank - 1)) do
  if redis.call('EXISTS', ARGV[2] .. ticket) == 1 then
    ahead = ahead + 1
  else
    redis.call('ZREM', KEYS[1], ticket)
  end
end
return ahead
"""


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


class QueueFull(Exception):
    """The conversation, or this person, has as many questions waiting as allowed."""

    def __init__(self, waiting: int, per_person: bool) -> None:
        super().__init__(f"{waiting} waiting")
        self.waiting = waiting
        self.per_person = per_person


@dataclass(frozen=True)
class Ticket:
    conversation_key: str
    token: str
    ahead_at_join: int


class ConversationQueue:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        max_waiting: int = 10,
        max_per_person: int = 3,
        # Waiters refresh their ticket every fraction of a second.
        ticket_ttl_s: float = 6.0,
    ) -> None:
        if max_waiting < 1 or max_per_person < 1 or not ticket_ttl_s > 0:
            raise ValueError("queue bounds must be at least 1 and the ticket ttl positive")
        self._redis = redis
        self.max_waiting = max_waiting
        self.max_per_person = max_per_person
        # A waiter refreshes its ticket far more often than this; a dead one's expires.
        self.ticket_ttl_s = ticket_ttl_s
        self._join: AsyncScript = redis.register_script(_JOIN_SCRIPT)
        self._ahead: AsyncScript = redis.register_script(_AHEAD_SCRIPT)

    async def join(self, conversation_key: str, owner: str) -> Ticket:
        """A place at the end of the conversation's queue; QueueFull when there is none."""
        token = secrets.token_hex(12)
        outcome, number = await self._join(
            keys=[_queue_key(conversation_key), f"{SEQUENCE_PREFIX}{conversation_key}"],
            args=[
                token,
                owner,
                self.max_waiting,
                self.max_per_person,
                ALIVE_PREFIX,
                _ms(self.ticket_ttl_s),
            ],
        )
        if int(outcome) < 0:
            raise QueueFull(int(number), per_person=int(outcome) == -2)
        return Ticket(conversation_key, token, int(number))

    async def ahead(self, ticket: Ticket) -> int:
        """How many questions wait before `ticket` (0: it is next); keeps it alive.
        -1 when the ticket has expired (its waiter was too slow to refresh it)."""
        return int(
            await self._ahead(
                keys=[_queue_key(ticket.conversation_key)],
                args=[ticket.token, ALIVE_PREFIX, _ms(self.ticket_ttl_s)],
            )
        )

    async def leave(self, ticket: Ticket) -> None:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(_queue_key(ticket.conversation_key), ticket.token)
            pipe.delete(f"{ALIVE_PREFIX}{ticket.token}")
            await pipe.execute()

    async def waiting(self, conversation_key: str) -> int:
        """Questions waiting in the conversation (dead tickets included until dropped)."""
        return int(await self._redis.zcard(_queue_key(conversation_key)))


def _queue_key(conversation_key: str) -> str:
    return f"{QUEUE_PREFIX}{conversation_key}"
