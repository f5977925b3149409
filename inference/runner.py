"""The seam between the worker's loop and whatever generates: `Runner`.

The worker's loop only admits jobs, steps, cancels and reads stats through this protocol; the
real one is `inference.model_runner.ModelRunner` (llama.cpp, continuous batching), and
tests script one (`tests/inference/scripted_runner.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from inference.batch_engine import JobDone, TextOut
from inference.sampling import SamplingParams
from inference.tool_calls import ToolCall


@dataclass(frozen=True)
class ToolCallOut:
    job_id: str
    call: ToolCall


@dataclass(frozen=True)
class JobError:
    job_id: str
    message: str


RunnerEvent = TextOut | ToolCallOut | JobDone | JobError


@dataclass(frozen=True)
class RunnerStats:
    """What the worker reports about the runner after each step and heartbeat."""

    batch_tokens: int  # tokens in the last decode batch
    cache_use: float  # share of the context's cells holding cached tokens (0..1)


class Runner(Protocol):
    model_name: str  # the default name jobs ask for it by

    @property
    def tool_format(self) -> str:
        """The tool-call format's name, announced for `python -m inference status`."""

    @property
    def free_slots(self) -> int: ...

    @property
    def active_jobs(self) -> list[str]: ...

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
        """Admit a job into a free slot; `InferenceError` for a job it cannot run.
        `continue_from` is answer text an earlier delivery already wrote: generation
        resumes after it."""

    def step(self) -> list[RunnerEvent]:
        """One decode step for every running job: what each produced."""

    def cancel(self, job_id: str) -> list[RunnerEvent]:
        """Stop a running job; its final events (empty when it is not running)."""

    def stats(self) -> RunnerStats: ...

    def close(self) -> None: ...
