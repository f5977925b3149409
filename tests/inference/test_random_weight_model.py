"""The GPU benchmark's random-weight model (benchmarks/gpu/random_gguf.py).

Its tokens/s compare equal work only if every request generates exactly max_tokens and
every token streams text; these check that on the real engine, with the bundled
model's header.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from inference.batch_engine import JobDone, TextOut
from inference.llama_backend import BackendConfig
from inference.model_runner import ModelRunner
from inference.sampling import SamplingParams

pytest.importorskip("gguf")


def load_random_gguf() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu" / "random_gguf.py"
    spec = importlib.util.spec_from_file_location("random_gguf", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["random_gguf"] = module
    spec.loader.exec_module(module)
    return module


random_gguf = load_random_gguf()


def test_silent_tokens_are_control_tokens_and_partial_utf8() -> None:
    # GPT-2 byte-level spelling: "Ġ" is a space, "Ã" the lead byte 0xC3 alone,
    # "Ã©" the whole "é".
    tokens = ["<|im_end|>", "Ġhello", "Ã", "Ã©", "world", ""]
    types = [3, 1, 1, 1, 1, 1]
    assert random_gguf.silent_tokens(tokens, types, "gpt2") == [0, 2, 5]
    # Other vocabularies: only the token types decide.
    assert random_gguf.silent_tokens(tokens, types, "llama") == [0]


@pytest.fixture(scope="module")
def random_model(model_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("random-model")
    header = folder / "header.gguf"
    random_gguf.save_header(model_path, header)
    dest = folder / "random.gguf"
    silenced = random_gguf.write_random_model(header, dest)
    assert silenced > 0
    assert dest.stat().st_size == model_path.stat().st_size
    with model_path.open("rb") as real, dest.open("rb") as fake:
        assert real.read(header.stat().st_size) == fake.read(header.stat().st_size)
    return dest


@pytest.mark.model
def test_every_request_generates_max_tokens_of_text(random_model: Path) -> None:
    runner = ModelRunner(BackendConfig(model_path=random_model, slots=2, ctx_per_slot=512))
    sampling = SamplingParams(temperature=0.0, max_tokens=24, repeat_penalty=1.0)
    prompts = ["Write a short story about a lighthouse keeper.", "Explain why the sky is blue."]
    texts = {str(n): "" for n in range(len(prompts))}
    done = {}
    try:
        for job, prompt in zip(texts, prompts, strict=True):
            runner.start(job, [{"role": "user", "content": prompt}], sampling)
        while runner.active_jobs:
            for event in runner.step():
                if isinstance(event, TextOut):
                    assert event.text, "a token streamed no text"
                    texts[event.job_id] += event.text
                elif isinstance(event, JobDone):
                    done[event.job_id] = event.completion_tokens
    finally:
        runner.close()
    assert done == {"0": 24, "1": 24}
    assert all(texts.values())
