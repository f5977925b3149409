"""Continuous batching over one llama.cpp context with several sequences.

Every `step()` builds one batch holding the next token of each generating sequence and
capped chunks of prompts still being read, runs one `llama_decode`, and samples each
sequence that produced logits with its own sampler chain. A job joins at the next step
and leaves the moment it ends, so short answers never wait for long ones, and a long
prompt is read a chunk per step instead of freezing the other streams.

Prefix reuse: each sequence slot remembers the tokens its cache holds. A new job takes
the free slot sharing the longest prefix with its prompt (a conversation's next turn
finds its previous turn there), and only the tokens after that prefix are evaluated.
A slot holding another conversation is taken only when no better one is free: the
one that loses the fewest cached tokens, least recently used among equals.

Host cache (optional, `host_cache_bytes` > 0): before a slot's cached tokens are
overwritten by another conversation, the sequence's state is copied to host RAM
(`HostCache`). A later prompt that shares a longer prefix with a saved state than with
its slot gets that state restored into the slot, so a conversation that lost its slot
resumes with a memory copy instead of re-reading its history. `JobDone.restored_tokens`
counts the prompt tokens that came from such a restore.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inference.errors import InvalidJob
from inference.host_cache import HostCache, common_prefix
from inference.llama_backend import LlamaBackend
from inference.sampling import SamplingParams
from inference.text_stream import StopStringFilter, TokenTextDecoder

log = logging.getLogger(__name__)

# Saving a sequence is only worth it when at least this many cached tokens would be lost:
# below that, re-reading them is about as cheap and the state would only crowd the cache.
MIN_SAVED_TOKENS = 64


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
    restored_tokens: int = 0  # of reused_tokens, those restored from the host cache


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
    restored_tokens: int
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


def _slot_value(slot: _Slot, prompt: list[int]) -> tuple[int, float]:
    """How good a free slot is for `prompt`: the tokens it lets the job skip, less the
    tokens of another conversation the job would overwrite, then the least recently
    used. So a conversation's own slot wins, and an empty slot beats one holding another
    conversation that merely shares the system prompt."""
    shared = common_prefix(slot.cached, prompt)
    return shared - (len(slot.cached) - shared), -slot.last_used


class BatchEngine:
    def __init__(
        self,
        backend: LlamaBackend,
        *,
        prefill_chunk: int = 256,
        host_cache_bytes: int = 0,
        min_saved_tokens: int = MIN_SAVED_TOKENS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.backend = backend
        self.ctx_per_slot = backend.config.ctx_per_slot
        self.prefill_chunk = prefill_chunk
        self.host_cache = HostCache(host_cache_bytes)
        self.min_saved_tokens = min_saved_tokens
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
        slot = self._pick_slot(prompt, self._hosted_prefix(prompt))
        restored = self._use_host_cache(slot, prompt)
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
            restored_tokens=reused if restored else 0,
            stops=StopStringFilter(params.stop),
        )
        slot.last_used = self._clock()

    def _pick_slot(self, prompt: list[int], hosted: int = 0) -> _Slot:
        """The free slot to run `prompt` in; `hosted` is the longest prefix a state saved
        in the host cache shares with it."""
        free = [slot for slot in self._slots if slot.job is None]
        if not free:
            raise RuntimeError("no free slot; check free_slots before admitting")
        best = max(free, key=lambda slot: _slot_value(slot, prompt))
        if common_prefix(best.cached, prompt) >= hosted:
            return best
        # A saved state will be restored, replacing whatever the slot holds: take the one
        # whose loss costs least (an empty one, else the least recently used), not one
        # holding another conversation that just happens to share the system prompt.
        return min(free, key=lambda slot: (len(slot.cached) > 0, slot.last_used))

    # -- host cache --------------------------------------------------------------------
    def _hosted_prefix(self, prompt: list[int]) -> int:
        entry = self.host_cache.best(prompt)
        return 0 if entry is None else common_prefix(entry[0], prompt)

    def _use_host_cache(self, slot: _Slot, prompt: list[int]) -> bool:
        """Save what `prompt` would overwrite in `slot`, then restore into it the saved
        state sharing the longest prefix with `prompt`, if that beats what the slot holds.
        Returns whether a state was restored."""
        if not self.host_cache.enabled:
            return False
        kept = common_prefix(slot.cached, prompt)
        if len(slot.cached) - kept >= self.min_saved_tokens:
            self._save(slot)
        # Looked up after the save: storing it may have evicted or superseded an entry.
        entry = self.host_cache.best(prompt)
        # Compare what each could actually reuse (the last prompt token is always read).
        limit = len(prompt) - 1
        if entry is None or min(common_prefix(entry[0], prompt), limit) <= min(kept, limit):
            return False
        return self._restore(slot, *entry)

    def _save(self, slot: _Slot) -> None:
        try:
            data = self.backend.save_sequence(slot.seq_id)
        except RuntimeError:
            # The job can still run; only a later turn's shortcut is lost.
            log.warning("could not save sequence %d to the host cache", slot.seq_id)
            return
        self.host_cache.put(slot.cached, data)

    def _restore(self, slot: _Slot, tokens: list[int], data: bytes) -> bool:
        try:
            self.backend.restore_sequence(slot.seq_id, data)
        except RuntimeError:
            # The sequence is empty now: the prompt is read in full, and the state that
            # failed is dropped so it is not tried again.
            log.warning("could not restore a saved state into sequence %d", slot.seq_id)
            self.host_cache.discard(tokens)
            slot.cached = []
            return False
        slot.cached = tokens
        return True

    def clear_host_cache(self) -> None:
        """Drop every saved state (`clear_idle_caches` keeps them)."""
        self.host_cache.clear()

    @property
    def cache_use(self) -> float:
        """Share of the context's cells holding cached tokens (running or kept for reuse)."""
        cached = sum(len(slot.cached) for slot in self._slots)
        return cached / (len(self._slots) * self.ctx_per_slot)

    def clear_idle_caches(self) -> None:
        """Forget what idle sequences hold (their next jobs start from scratch).

        The host cache is kept, so a later prompt may still restore a saved state from
        it; call `clear_host_cache` as well for a fully cold start."""
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
            restored_tokens=job.restored_tokens,
        )

    def close(self) -> None:
        for slot in self._slots:
            if slot.job is not None:
                self._finish(slot, "cancelled")
        self.host_cache.clear()  # the states are useless without this context
        self.backend.close()
