"""Replies in flight, written down in Redis so that a process can finish another's.

A bot process that dies while a reply is being written (SIGKILL, OOM, a lost host)
leaves messages on the platform showing part of an answer. Each reply in flight is
therefore recorded under the intake claim of the event it answers
(`storage.intake_claims`): which messages it sent and what each shows, the answer's
text so far, and the pool job writing the rest. The claim is the lease: when its holder
dies, the process that takes the event over reads this entry and either finishes the
same messages from the job's output, or marks them interrupted and answers again
(`bot.reply_journal`).

Entries are small JSON strings that expire (`ttl_s`), so a journal left by a crash is
never kept for ever; a reply that was delivered drops its entry.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field

import redis.asyncio as aioredis

JOURNAL_PREFIX = "journal:"

log = logging.getLogger(__name__)


@dataclass
class JournalEntry:
    # (the platform's reference to a message, the text it shows), in order.
    messages: list[tuple[str, str]] = field(default_factory=list)
    text: str = ""  # the answer as shown so far: no status line, no ending
    job_id: str = ""  # the pool job generating now ("" when none)
    job_base: str = ""  # the answer's text when that job started: its output follows it
    conversation: str = ""  # the conversation the answer belongs to
    complete: bool = False  # the messages show the whole reply: nothing is left to do
    nonce_base: str = ""  # names the reply's messages to the platform (sent once each)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str) -> JournalEntry:
        data = json.loads(raw)
        return cls(
            messages=[(str(ref), str(text)) for ref, text in data.get("messages", [])],
            text=str(data.get("text", "")),
            job_id=str(data.get("job_id", "")),
            job_base=str(data.get("job_base", "")),
            conversation=str(data.get("conversation", "")),
            complete=bool(data.get("complete", False)),
            nonce_base=str(data.get("nonce_base", "")),
        )


def journal_key(source: str, event_id: str) -> str:
    return f"{JOURNAL_PREFIX}{source}:{event_id}"


class ReplyJournalStore:
    def __init__(self, redis: aioredis.Redis, *, ttl_s: float = 3600.0) -> None:
        if not ttl_s > 0:
            raise ValueError("ttl_s must be a positive number of seconds")
        self._redis = redis
        self._ttl_ms = int(ttl_s * 1000)

    async def save(self, key: str, entry: JournalEntry) -> None:
        await self._redis.set(key, entry.to_json(), px=self._ttl_ms)

    async def load(self, key: str) -> JournalEntry | None:
        raw = await self._redis.get(key)
        if raw is None:
            return None
        try:
            return JournalEntry.from_json(raw.decode() if isinstance(raw, bytes) else raw)
        except (ValueError, TypeError, AttributeError) as exc:  # unreadable: start afresh
            log.warning("ignoring an unreadable reply journal entry %s: %s", key, exc)
            return None

    async def drop(self, key: str) -> None:
        await self._redis.delete(key)
