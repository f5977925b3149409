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
from inference.runner import JobError, RunnerEvent, RunnerStats, ToolCallOut
from inference.sampling import SamplingParams
from inference.tool_calls import ToolPlan, parse_call, plan_tools, prepare_messages
from inference.tool_formats import choose_format


@dataclass
class _ToolAnswer:
    """Watches a tool-enabled answer: free text streams on, a call is held until whole."""

    plan: ToolPlan
    held: str = ""
    is_call: bool | None = None  # None: not known yet (the format decides when it is)

    def __post_init__(self) -> None:
        if self.plan.forced:
            self.is_call = True

    def feed(self, event: TextOut) -> list[RunnerEvent]:
        if self.is_call is False:
            return [event]
        self.held += event.text
        if self.is_call:
            return []
        shown, self.held, self.is_call = self.plan.call_format.split_answer(self.held)
        return [TextOut(event.job_id, shown)] if shown else []

    def finish(self, done: JobDone) -> list[RunnerEvent]:
        if not self.is_call or done.reason == "cancelled":
            # Text held back in case it began a call's tag was not one after all.
            tail = [TextOut(done.job_id, self.held)] if self.held and not self.is_call else []
            return [*tail, done]
        try:
            call = parse_call(self.held, self.plan)
        except InvalidJob as exc:
            return [JobError(done.job_id, str(exc))]
        return [ToolCallOut(done.job_id, call), dataclasses.replace(done, reason="tool_calls")]


class ModelRunner:
    """The real `Runner`: one GGUF model in llama.cpp, batched over `config.slots`."""

    def __init__(
        self,
        config: BackendConfig,
        *,
        prefill_chunk: int = 256,
        host_cache_mb: int = 0,
        chat_template: str | None = None,
        tool_format: str = "auto",
    ) -> None:
        """`host_cache_mb` bounds the host RAM kept for evicted sequences' KV states
        (0: off); see `BatchEngine`. `chat_template` replaces the model's own (Jinja);
        `tool_format` is "auto" (the template's native tool-call format, else ours) or
        a format's name (see `tool_formats`)."""
        self.backend = LlamaBackend(config)
        self.model_name = config.model_path.stem
        self.template = ChatTemplate(
            chat_template or self.backend.metadata("tokenizer.chat_template"),
            bos_token=self.backend.token_text(self.backend.bos_token),
            eos_token=self.backend.token_text(self.backend.eos_token),
        )
        self.call_format = choose_format(self.template.source, tool_format)
        # Where a call's tags are special tokens, they must reach the text as written.
        for tag in (self.call_format.open_tag, self.call_format.close_tag):
            tokens = self.backend.tokenize(tag) if tag else []
            if len(tokens) == 1:
                self.backend.render_as_text(tokens[0])
        self.engine = BatchEngine(
            self.backend,
            prefill_chunk=prefill_chunk,
            host_cache_bytes=host_cache_mb * 1024 * 1024,
        )
        self._tool_answers: dict[str, _ToolAnswer] = {}

    @property
    def tool_format(self) -> str:
        return self.call_format.name

    @property
    def free_slots(self) -> int:
        return self.engine.free_slots

    @property
    def active_jobs(self) -> list[str]:
        return self.engine.active_jobs

    def prompt_tokens(
        self,
        messages: list[dict[str, Any]],
        answer_start: str = "",
        tools: list[dict[str, Any]] | None = None,
    ) -> list[int]:
        try:
            text = self.template.render(messages, tools=tools)
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
        plan = plan_tools(tools or [], tool_choice, self.call_format)
        prompt = self.prompt_tokens(
            prepare_messages(messages, plan, self.call_format),
            continue_from,
            tools=plan.template_tools() if plan is not None else None,
        )
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

    def stats(self) -> RunnerStats:
        return RunnerStats(
            batch_tokens=self.engine.last_batch_size, cache_use=self.engine.cache_use
        )

    def close(self) -> None:
        self.engine.close()
