"""One model, ready to serve jobs: backend + chat template + continuous batching engine."""

from __future__ import annotations

from typing import Any

from inference.batch_engine import BatchEngine, EngineEvent, JobDone
from inference.chat_template import ChatTemplate
from inference.errors import InvalidJob
from inference.llama_backend import BackendConfig, LlamaBackend
from inference.sampling import SamplingParams


class ModelRunner:
    def __init__(self, config: BackendConfig, *, prefill_chunk: int = 256) -> None:
        self.backend = LlamaBackend(config)
        self.model_name = config.model_path.stem
        self.template = ChatTemplate(
            self.backend.metadata("tokenizer.chat_template"),
            bos_token=self.backend.token_text(self.backend.bos_token),
            eos_token=self.backend.token_text(self.backend.eos_token),
        )
        self.engine = BatchEngine(self.backend, prefill_chunk=prefill_chunk)

    @property
    def free_slots(self) -> int:
        return self.engine.free_slots

    @property
    def active_jobs(self) -> list[str]:
        return self.engine.active_jobs

    def prompt_tokens(self, messages: list[dict[str, Any]]) -> list[int]:
        try:
            text = self.template.render(messages, tools=None)
        except Exception as exc:  # Jinja errors: a role the template refuses, for one
            raise InvalidJob(f"the model's chat template rejected the messages ({exc})") from exc
        return self.backend.tokenize(text)

    def start(self, job_id: str, messages: list[dict[str, Any]], params: SamplingParams) -> None:
        self.engine.admit(job_id, self.prompt_tokens(messages), params)

    def step(self) -> list[EngineEvent]:
        return self.engine.step()

    def cancel(self, job_id: str) -> JobDone | None:
        return self.engine.cancel(job_id)

    def close(self) -> None:
        self.engine.close()
