"""A `Runner` that plays scripts instead of running a model, so the worker's queue,
handovers, cancels and recovery are tested in milliseconds with only Redis.

A job's script is chosen by its last user message (`runner.reply(question, ...)`); a
question without one is answered "You said: <question>", a word per step. The runner
records what each job was started with and which were cancelled, for tests to check."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from inference.batch_engine import JobDone, TextOut
from inference.errors import InvalidJob
from inference.runner import JobError, RunnerEvent, RunnerStats, ToolCallOut
from inference.sampling import SamplingParams
from inference.tool_calls import ToolCall


@dataclass(frozen=True)
class Script:
    tokens: list[str]
    step_s: float = 0.0  # how long each decode step takes while this job runs
    tool_call: ToolCall | None = None  # emitted once the tokens are out
    error: str = ""  # fail when the tokens are out
    refuse: str = ""  # refuse the job at admission (as a too-long prompt is)


@dataclass
class Started:
    """What `start()` was given for one job."""

    job_id: str
    messages: list[dict[str, Any]]
    params: SamplingParams
    continue_from: str
    already_generated: int
    tools: list[dict[str, Any]] | None


@dataclass
class _Running:
    script: Script
    position: int  # next token of the script to emit
    max_tokens: int
    generated: int = 0


def words(text: str) -> list[str]:
    """`text` as tokens: each word with the space before it."""
    parts = text.split(" ")
    return [parts[0], *(f" {part}" for part in parts[1:])]


def last_user_text(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return str(users[-1].get("content", "")) if users else ""


@dataclass
class ScriptedRunner:
    slots: int = 2
    model_name: str = "scripted"
    tool_format: str = "json"
    default_step_s: float = 0.0  # each decode step of a question without a script
    started: list[Started] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)
    closed: bool = False
    _scripts: dict[str, Script] = field(default_factory=dict)
    _running: dict[str, _Running] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reply(self, question: str, tokens: list[str], **script: Any) -> None:
        """Answer jobs whose last user message is `question` with `tokens`."""
        with self._lock:
            self._scripts[question] = Script(tokens, **script)

    def script_for(self, messages: list[dict[str, Any]]) -> Script:
        question = last_user_text(messages)
        with self._lock:
            return self._scripts.get(question) or Script(
                words(f"You said: {question}"), step_s=self.default_step_s
            )

    def answer_to(self, question: str) -> str:
        return "".join(self.script_for([{"role": "user", "content": question}]).tokens)

    def started_ids(self) -> list[str]:
        return [job.job_id for job in self.started]

    # -- the Runner protocol -------------------------------------------------------------
    @property
    def free_slots(self) -> int:
        return self.slots - len(self._running)

    @property
    def active_jobs(self) -> list[str]:
        return list(self._running)

    def start(
        self,
        job_id: str,
        messages: list[dict[str, Any]],
        params: SamplingParams,
        tools: list[dict[str, Any]] | None = None,
        tool_choice: Any = None,
        continue_from: str = "",
        already_generated: int = 0,
    ) -> None:
        assert self.free_slots > 0, "the worker admitted a job without a free slot"
        script = self.script_for(messages)
        self.started.append(
            Started(job_id, messages, params, continue_from, already_generated, tools)
        )
        if script.refuse:
            raise InvalidJob(script.refuse)
        # A resumed job goes on after the tokens an earlier delivery wrote.
        self._running[job_id] = _Running(script, already_generated, params.max_tokens)
        self._running[job_id].generated = already_generated

    def step(self) -> list[RunnerEvent]:
        running = list(self._running.items())
        time.sleep(max((job.script.step_s for _, job in running), default=0.0))
        events: list[RunnerEvent] = []
        for job_id, job in running:
            tokens = job.script.tokens
            if job.position < len(tokens) and job.generated < job.max_tokens:
                events.append(TextOut(job_id, tokens[job.position]))
                job.position += 1
                job.generated += 1
                continue
            del self._running[job_id]
            if job.script.error:
                events.append(JobError(job_id, job.script.error))
                continue
            reason = "length" if job.position < len(tokens) else "stop"
            if job.script.tool_call is not None:
                events.append(ToolCallOut(job_id, job.script.tool_call))
                reason = "tool_calls"
            events.append(self._done(job_id, job, reason))
        return events

    def cancel(self, job_id: str) -> list[RunnerEvent]:
        job = self._running.pop(job_id, None)
        if job is None:
            return []
        self.cancelled.append(job_id)
        return [self._done(job_id, job, "cancelled")]

    def stats(self) -> RunnerStats:
        return RunnerStats(batch_tokens=len(self._running), cache_use=0.0)

    def close(self) -> None:
        self.closed = True

    @staticmethod
    def _done(job_id: str, job: _Running, reason: str) -> JobDone:
        return JobDone(
            job_id, reason, prompt_tokens=10, reused_tokens=0, completion_tokens=job.generated
        )
