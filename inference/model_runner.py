"""One model, ready to serve jobs: backend + chat template + continuous batching engine,
plus the tool-call layer that turns constrained output into structured calls."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from inference.batch_engine import BatchEngine, JobDone, TextOut
from inference.chat_template import ChatTemplate
from inference.errors import InvalidJob
from inference.llama_backend import BackendConfig, LlamaBackend
from inference.sampling import SamplingParams
from inference.tool_calls import ToolCall, ToolPlan, parse_call, plan_tools, prepare_messages


@dataclass(frozen=True)
class ToolCallOut:
    job_id: str
    call: ToolCall


@dataclass(frozen=True)
class JobError:
    job_id: str
    message: str


RunnerEvent = TextOut | ToolCallOut | JobDone | JobError


@dataclass
class _ToolAnswer:
    """Watches a tool-enabled answer: free text streams on, a call is held until whole."""

    plan: ToolPlan
    held: str = ""
    is_call: bool | None = None  # undecided until the first non-blank character

    def __post_init__(self) -> None:
        if self.plan.forced:
            self.is_call = True

    def feed(self, event: TextOut) -> list[RunnerEvent]:
        if self.is_call is False:
            return [event]
        self.held += event.text
        if self.is_call is None:
            start = self.held.lstrip()
            if not start:
                return []
            self.is_call = start.startswith("{")
            if not self.is_call:
                text, self.held = self.held, ""
                return [TextOut(event.job_id, text)]
        return []

    def finish(self, done: JobDone) -> list[RunnerEvent]:
        if not self.is_call or done.reason == "cancelled":
            return [done]
        try:
            call = parse_call(self.held, self.plan)
        except InvalidJob as exc:
            return [JobError(done.job_id, str(exc))]
        return [ToolCallOut(done.job_id, call), dataclasses.replace(done, reason="tool_calls")]


class ModelRunner:
    def __init__(
        self, config: BackendConfig, *, prefill_chunk: int = 256, host_cache_mb: int = 0
    ) -> None:
        """`host_cache_mb` bounds the host RAM kept for evicted sequences' KV states
        (0: off); see `BatchEngine`."""
        self.backend = LlamaBackend(config)
        self.model_name = config.model_path.stem
        self.template = ChatTemplate(
            self.backend.metadata("tokenizer.chat_template"),
            bos_token=self.backend.token_text(self.backend.bos_token),
            eos_token=self.backend.token_text(self.backend.eos_token),
        )
        self.engine = BatchEngine(
            self.backend,
            prefill_chunk=prefill_chunk,
            host_cache_bytes=host_cache_mb * 1024 * 1024,
        )
        self._tool_answers: dict[str, _ToolAnswer] = {}

    @property
    def free_slots(self) -> int:
        return self.engine.free_slots

    @property
    def active_jobs(self) -> list[str]:
        return self.engine.active_jobs

    def prompt_tokens(self, messages: list[dict[str, Any]], answer_start: str = "") -> list[int]:
        try:
            text = self.template.render(messages, tools=None)
        except Exception as exc:  # Jinja errors: a role the template refuses, for one
            raise InvalidJob(f"the model's chat template rejected the messages ({exc})") from exc
        return self.backend.tokenize(text + answer_start)

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
        """Start a job. `continue_from` is answer text a previous worker already sent:
        generation resumes after it, so the requester sees one seamless answer."""
        plan = plan_tools(tools or [], tool_choice)
        prompt = self.prompt_tokens(prepare_messages(messages, plan), continue_from)
        if already_generated:
            remaining = max(1, params.max_tokens - already_generated)
            params = params.model_copy(update={"max_tokens": remaining})
        if plan is None:
            self.engine.admit(job_id, prompt, params)
            return
        self.engine.admit(job_id, prompt, params, plan.grammar, plan.lazy_trigger)
        self._tool_answers[job_id] = _ToolAnswer(plan)

    def step(self) -> list[RunnerEvent]:
        return self._watch_tools(self.engine.step())

    def cancel(self, job_id: str) -> list[RunnerEvent]:
        done = self.engine.cancel(job_id)
        return self._watch_tools([done]) if done is not None else []

    def _watch_tools(self, events: list[TextOut | JobDone]) -> list[RunnerEvent]:
        out: list[RunnerEvent] = []
        for event in events:
            answer = self._tool_answers.get(event.job_id)
            if answer is None:
                out.append(event)
            elif isinstance(event, TextOut):
                out.extend(answer.feed(event))
            else:
                del self._tool_answers[event.job_id]
                out.extend(answer.finish(event))
        return out

    def close(self) -> None:
        self.engine.close()
