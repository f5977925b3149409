"""Continuous batching over one llama.cpp context with several sequences.

Every `step()` builds one batch holding the next token of each generating sequence and
capped chunks of prompts still being read, runs one `llama_decode`, and samples each
sequence that produced logits with its own sampler chain. A job joins at the next step
and leaves the moment it ends, so short answers never wait for long ones, and a long
prompt is read a chunk per step instead of freezing the other streams.

Prefix reuse: each sequence slot remembers the tokens its cache holds. A new job takes
the free slot sharing the longest prefix with its prompt (a conversation's next turn
finds its previous turn there), and only the tokens after that prefix are evaluated.
Idle slots are reused least-recently-used first.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference.errors import InvalidJob
from inference.llama_backend import LlamaBackend
from inference.sampling import SamplingParams
from inference.text_stream import StopStringFilter, TokenTextDecoder


@dataclass(frozen=True)
class TextOut:
    job_id: str
    text: str


@dataclass(frozen=True)
class JobDone:
    job_id: str
    reason: str  # "stop", "length", "cancelled"
    prompt_tokens: int
    reused_tokens: int
    completion_tokens: int


EngineEvent = TextOut | JobDone


@dataclass
class _Running:
    job_id: str
    params: SamplingParams
    sampler: Any
    pending: list[int]  # prompt tokens not yet evaluated
    position: int  # position of the next token to evaluate
    prompt_tokens: int
    reused_tokens: int
    decoder: TokenTextDecoder = field(default_factory=TokenTextDecoder)
    stops: StopStringFilter = field(default_factory=lambda: StopStringFilter(()))
    next_token: int | None = None  # sampled, not yet evaluated
    generated: int = 0
    started: float = field(default_factory=time.monotonic)


@dataclass
class _Slot:
    seq_id: int
    cached: list[int] = field(default_factory=list)  # tokens whose KV the cache holds
    last_used: float = 0.0
    job: _Running | None = None


def common_prefix(a: list[int], b: list[int]) -> int:
    size = min(len(a), len(b))
    for index in range(size):
        if a[index] != b[index]:
            return index
    return size


class BatchEngine:
    def __init__(
        self,
        backend: LlamaBackend,
        *,
        prefill_chunk: int = 256,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.ctx_per_slot = backend.config.ctx_per_slot
        self.prefill_chunk = prefill_chunk
        self._clock = clock
        self._slots = [_Slot(seq_id=index) for index in range(backend.config.slots)]
        self.steps = 0
        self.last_batch_size = 0

    # -- admission ---------------------------------------------------------------------
    @property
    def free_slots(self) -> int:
        return sum(1 for slot in self._slots if slot.job is None)

    @property
    def active_jobs(self) -> list[str]:
        return [slot.job.job_id for slot in self._slots if slot.job is not None]

    def admit(
        self,
        job_id: str,
        prompt: list[int],
        params: SamplingParams,
        grammar: str | None = None,
        lazy_trigger: str | None = None,
    ) -> None:
        """Start a job in a free slot. Raises `InvalidJob` when it cannot run at all."""
        if not prompt:
            raise InvalidJob("the prompt is empty")
        if len(prompt) >= self.ctx_per_slot:
            raise InvalidJob(
                f"the conversation is too long for the model's context ({len(prompt)} of "
                f"{self.ctx_per_slot} tokens); use /reset to start over"
            )
        slot = self._pick_slot(prompt)
        # Keep the shared prefix, but always evaluate at least the last prompt token:
        # its logits are where the answer starts.
        reused = min(common_prefix(slot.cached, prompt), len(prompt) - 1)
        self.backend.forget(slot.seq_id, reused)
        slot.cached = prompt[:reused]
        try:
            sampler = self.backend.new_sampler(params, grammar, lazy_trigger)
        except Exception as exc:  # a grammar llama.cpp rejects, for one
            raise InvalidJob(f"cannot set up sampling for this job ({exc})") from exc
        slot.job = _Running(
            job_id=job_id,
            params=params,
            sampler=sampler,
            pending=prompt[reused:],
            position=reused,
            prompt_tokens=len(prompt),
            reused_tokens=reused,
            stops=StopStringFilter(params.stop),
        )
        slot.last_used = self._clock()

    def _pick_slot(self, prompt: list[int]) -> _Slot:
        free = [slot for slot in self._slots if slot.job is None]
        if not free:
            raise RuntimeError("no free slot; check free_slots before admitting")
        # Longest shared prefix first; among equals the least recently used.
        return max(free, key=lambda slot: (common_prefix(slot.cached, prompt), -slot.last_used))

    @property
    def cache_use(self) -> float:
        """Share of the context's cells holding cached tokens (running or kept for reuse)."""
        cached = sum(len(slot.cached) for slot in self._slots)
        return cached / (len(self._slots) * self.ctx_per_slot)

    def clear_idle_caches(self) -> None:
        """Forget what idle sequences hold (their next jobs start from scratch)."""
        for slot in self._slots:
            if slot.job is None:
                self.backend.forget(slot.seq_id)
                slot.cached = []

    def cancel(self, job_id: str) -> JobDone | None:
        for slot in self._slots:
            if slot.job is not None and slot.job.job_id == job_id:
                return self._finish(slot, "cancelled")
        return None

    # -- one step ----------------------------------------------------------------------
    def step(self) -> list[EngineEvent]:
        """Advance every running job by one decode. Returns what they produced."""
        backend = self.backend
        backend.batch_clear()
        sample_at: list[tuple[_Slot, int]] = []
        # Generating sequences first: one token each keeps their streams flowing.
        for slot in self._slots:
            job = slot.job
            if job is not None and job.next_token is not None:
                index = backend.batch_add(job.next_token, job.position, slot.seq_id, True)
                slot.cached.append(job.next_token)
                job.position += 1
                job.next_token = None
                sample_at.append((slot, index))
        # Then prompt chunks, capped per sequence and by the batch's room.
        for slot in self._slots:
            job = slot.job
            if job is None or not job.pending or backend.batch_room == 0:
                continue
            take = min(len(job.pending), self.prefill_chunk, backend.batch_room)
            chunk, job.pending = job.pending[:take], job.pending[take:]
            for offset, token in enumerate(chunk):
                last = not job.pending and offset == take - 1
                index = backend.batch_add(token, job.position, slot.seq_id, last)
                job.position += 1
                if last:
                    sample_at.append((slot, index))
            slot.cached.extend(chunk)
        self.last_batch_size = backend.config.batch_tokens - backend.batch_room
        if self.last_batch_size == 0:
            return []
        backend.decode()
        self.steps += 1
        events: list[EngineEvent] = []
        for slot, index in sample_at:
            events.extend(self._sampled(slot, backend.sample(slot.job.sampler, index)))  # type: ignore[union-attr]
        return events

    def _sampled(self, slot: _Slot, token: int) -> list[EngineEvent]:
        job = slot.job
        assert job is not None
        events: list[EngineEvent] = []
        if self.backend.is_end_of_generation(token):
            return [*self._flush(job, events), self._finish(slot, "stop")]
        job.generated += 1
        text = job.stops.feed(job.decoder.feed(self.backend.piece(token)))
        if text:
            events.append(TextOut(job.job_id, text))
        if job.stops.stopped:
            return [*events, self._finish(slot, "stop")]
        if job.generated >= job.params.max_tokens or job.position + 1 >= self.ctx_per_slot:
            return [*self._flush(job, events), self._finish(slot, "length")]
        job.next_token = token
        return events

    def _flush(self, job: _Running, events: list[EngineEvent]) -> list[EngineEvent]:
        tail = job.stops.feed(job.decoder.flush()) + job.stops.flush()
        if tail:
            events.append(TextOut(job.job_id, tail))
        return events

    def _finish(self, slot: _Slot, reason: str) -> JobDone:
        job = slot.job
        assert job is not None
        self.backend.free_sampler(job.sampler)
        if job.pending:  # stopped while reading the prompt: the cache holds only a part
            self.backend.forget(slot.seq_id, len(slot.cached))
        slot.job = None
        slot.last_used = self._clock()
        return JobDone(
            job_id=job.job_id,
            reason=reason,
            prompt_tokens=job.prompt_tokens,
            reused_tokens=job.reused_tokens,
            completion_tokens=job.generated,
        )

    def close(self) -> None:
        for slot in self._slots:
            if slot.job is not None:
                self._finish(slot, "cancelled")
        self.backend.close()
