"""The wire format between clients and workers, all in Redis.

- Jobs go into one stream (`JOBS_STREAM`), read by the consumer group `WORKER_GROUP`, so
  any number of workers share them. A job is acknowledged after its last chunk is written.
- Each job's output goes to its own stream (`output_stream(job_id)`), bounded and
  expiring, so a client that reconnects resumes from the last entry id it saw.
- A client cancels a job by setting `cancel_key(job_id)` and publishing the job id on
  `CANCEL_CHANNEL`: the worker hears it at once and stops the job within one decode step;
  the key covers jobs not started yet and messages missed during a reconnect.
- Workers announce themselves with an expiring hash under `worker_key(name)`: model,
  slots, busy slots, and the id of the connection it blocks on while idle.
- A job may carry an `affinity` key (its conversation). The worker that finishes it
  records itself under `affinity_key(key)`: its cache now holds the conversation, so a
  worker that reads the next turn hands the entry to it (`XCLAIM` onto that consumer)
  when it is alive and has a free slot. The receiver finds the entry among its own
  pending entries. A job is handed over at most once for its conversation.
- A job may name a `model`; a worker that reads a job for another model hands it the
  same way to a live worker that serves it, or fails it when none does.
- A job that failed on several workers goes to `DEAD_LETTER_STREAM` with the reason,
  and its requester gets an error chunk.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

JOBS_STREAM = "inference:jobs"
WORKER_GROUP = "workers"
DEAD_LETTER_STREAM = "inference:dead"
CANCEL_CHANNEL = "inference:cancel"
DEAD_LETTER_MAXLEN = 10_000
WORKER_KEY_PREFIX = "inference:worker:"
OUTPUT_MAXLEN = 4096
OUTPUT_TTL_S = 600
CANCEL_TTL_S = 600
WORKER_HEARTBEAT_TTL_S = 15
# How long a worker is remembered as holding a conversation's cache. Past a few minutes
# other conversations have likely taken its sequence slots over anyway.
AFFINITY_TTL_S = 600


def output_stream(job_id: str) -> str:
    return f"inference:out:{job_id}"


def cancel_key(job_id: str) -> str:
    return f"inference:cancel:{job_id}"


def worker_key(name: str) -> str:
    return f"{WORKER_KEY_PREFIX}{name}"


def affinity_key(key: str) -> str:
    return f"inference:affinity:{key}"


def new_job_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class Job:
    """A chat completion request: OpenAI-style messages, sampling values, and optionally
    OpenAI-style `tools` with a `tool_choice` ("auto", "none", "required" or a tool).
    `affinity` names the conversation, so its turns go to the worker caching it; `model`
    names the model that must answer (empty: whichever the pool has)."""

    messages: list[dict[str, Any]]
    sampling: dict[str, Any]
    job_id: str = field(default_factory=new_job_id)
    scope: str = ""
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    affinity: str = ""
    model: str = ""

    def to_fields(self) -> dict[str, str]:
        fields = {
            "id": self.job_id,
            "messages": json.dumps(self.messages),
            "sampling": json.dumps(self.sampling),
            "scope": self.scope,
        }
        if self.tools:
            fields["tools"] = json.dumps(self.tools)
            fields["tool_choice"] = json.dumps(self.tool_choice)
        if self.affinity:
            fields["affinity"] = self.affinity
        if self.model:
            fields["model"] = self.model
        return fields

    @classmethod
    def from_fields(cls, fields: dict[str, str]) -> Job:
        return cls(
            job_id=fields["id"],
            messages=json.loads(fields["messages"]),
            sampling=json.loads(fields.get("sampling") or "{}"),
            scope=fields.get("scope", ""),
            tools=json.loads(fields.get("tools") or "[]"),
            tool_choice=json.loads(fields.get("tool_choice") or "null"),
            affinity=fields.get("affinity", ""),
            model=fields.get("model", ""),
        )


ChunkKind = Literal["delta", "tool_call", "done", "error"]


@dataclass(frozen=True)
class Chunk:
    """One entry of a job's output stream. A "tool_call" chunk carries the call's name,
    id and its arguments as JSON in `text`."""

    kind: ChunkKind
    text: str = ""
    tool_name: str = ""
    tool_call_id: str = ""
    finish_reason: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    # The entry's id in the output stream (not sent): where a reconnecting client resumes.
    entry_id: str = field(default="", compare=False)

    def to_fields(self) -> dict[str, str]:
        fields: dict[str, str] = {"kind": self.kind}
        if self.text:
            fields["text"] = self.text
        if self.tool_name:
            fields["tool_name"] = self.tool_name
            fields["tool_call_id"] = self.tool_call_id
        if self.finish_reason:
            fields["finish_reason"] = self.finish_reason
        if self.usage:
            fields["usage"] = json.dumps(self.usage)
        return fields

    @classmethod
    def from_fields(cls, fields: dict[str, str], entry_id: str = "") -> Chunk:
        kind = fields.get("kind", "error")
        if kind not in ("delta", "tool_call", "done", "error"):
            kind = "error"
        return cls(
            kind=kind,  # type: ignore[arg-type]
            text=fields.get("text", ""),
            tool_name=fields.get("tool_name", ""),
            tool_call_id=fields.get("tool_call_id", ""),
            finish_reason=fields.get("finish_reason", ""),
            usage=json.loads(fields["usage"]) if "usage" in fields else {},
            entry_id=entry_id,
        )
