"""One llama.cpp model and context, generating one chat completion at a time.

A `Llama` object is not thread-safe, so each engine belongs to exactly one worker slot
thread, which creates it and is the only one to call it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from inference.errors import InvalidJob
from inference.sampling import SamplingParams

log = logging.getLogger(__name__)

# llama-cpp-python silences the C library while it loads a model by swapping the
# process's stdout/stderr file descriptors and `sys.stdout`; two loads at once restore
# them in the wrong order and leave the app's own output going to /dev/null.
_LOAD_LOCK = threading.Lock()


@dataclass(frozen=True)
class Delta:
    text: str


@dataclass(frozen=True)
class Finish:
    reason: str
    completion_tokens: int


class Engine(Protocol):
    """Generates a chat completion as text deltas followed by one `Finish`."""

    model_name: str

    def generate(
        self, messages: list[dict[str, Any]], params: SamplingParams
    ) -> Iterator[Delta | Finish]: ...


class LlamaEngine:
    def __init__(
        self, model_path: Path, *, n_ctx: int, gpu_layers: int = 0, n_threads: int | None = None
    ) -> None:
        from llama_cpp import Llama

        self.model_name = model_path.stem
        self.n_ctx = n_ctx
        with _LOAD_LOCK:
            self._llama = Llama(
                model_path=str(model_path),
                n_ctx=n_ctx,
                n_gpu_layers=gpu_layers,
                n_threads=n_threads or max(1, (os.cpu_count() or 2)),
                verbose=False,
            )

    def count_tokens(self, text: str) -> int:
        return len(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def generate(
        self, messages: list[dict[str, Any]], params: SamplingParams
    ) -> Iterator[Delta | Finish]:
        try:
            stream = self._llama.create_chat_completion(
                messages=messages,  # type: ignore[arg-type]
                stream=True,
                temperature=params.temperature,
                top_p=params.top_p,
                top_k=params.top_k,
                min_p=params.min_p,
                repeat_penalty=params.repeat_penalty,
                max_tokens=params.max_tokens,
                seed=None if params.seed < 0 else params.seed,
                stop=list(params.stop) or None,
            )
            completion_tokens = 0
            reason = "stop"
            chunk: Any
            for chunk in stream:
                choice = chunk["choices"][0]
                text = choice.get("delta", {}).get("content") or ""
                if text:
                    completion_tokens += 1  # each streamed chunk carries one sampled token
                    yield Delta(text)
                if choice.get("finish_reason"):
                    reason = str(choice["finish_reason"])
        except ValueError as exc:
            # llama-cpp-python raises ValueError for a prompt longer than the context.
            raise InvalidJob(
                f"the conversation is too long for the model's context ({self.n_ctx} tokens); "
                "use /reset to start over"
            ) from exc
        yield Finish(reason=reason, completion_tokens=completion_tokens)
