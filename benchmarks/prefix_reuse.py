"""Time to first token at turn 10 of a long conversation, with and without prefix reuse.

The conversation has nine earlier turns (about 1,500 tokens of history); the model
writes turn 9's answer itself. "with reuse" is what a conversation's next turn gets
from the worker: the sequence that answered turn 9 still holds that prompt and answer
in its cache, so only turn 10's new tokens are evaluated. "without" starts from an
empty cache and evaluates the whole history. "restored" is turn 10 after another
conversation took the sequence in between: the worker saved the conversation's state to
host RAM (`--host-cache-mb`) and restores it. Measured on the batching engine itself (no Redis),
as the median of several runs.

    python benchmarks/prefix_reuse.py [--runs 5] [--gpu-layers -1]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inference.batch_engine import TextOut  # noqa: E402
from inference.llama_backend import BackendConfig  # noqa: E402
from inference.model_files import resolve_model_path  # noqa: E402
from inference.model_runner import ModelRunner  # noqa: E402
from inference.sampling import SamplingParams  # noqa: E402

TOPICS = ["gardening", "bread", "chess", "rivers", "violins", "comets", "bridges", "tea", "owls"]
GREEDY = SamplingParams(temperature=0.0, max_tokens=1, repeat_penalty=1.0)
ANSWER = SamplingParams(temperature=0.0, max_tokens=120, repeat_penalty=1.0)


def conversation(turns: int) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": "You are a helpful assistant."}]
    for topic in TOPICS[:turns]:
        messages.append({"role": "user", "content": f"Tell me three facts about {topic}."})
        facts = " ".join(
            f"Fact {n} about {topic}: it has a long and varied history, and many people "
            f"around the world enjoy learning about it in books, museums, courses and long "
            f"conversations with their friends and families."
            for n in (1, 2, 3, 4)
        )
        messages.append({"role": "assistant", "content": facts})
    return messages


def answer(runner: ModelRunner, job: str, messages: list[dict[str, str]]) -> str:
    runner.start(job, messages, ANSWER)
    text = ""
    while runner.active_jobs:
        text += "".join(e.text for e in runner.step() if isinstance(e, TextOut))
    return text


def first_token_s(runner: ModelRunner, job: str, messages: list[dict[str, str]]) -> float:
    started = time.perf_counter()
    runner.start(job, messages, GREEDY)
    while True:
        events = runner.step()
        if any(isinstance(event, TextOut) for event in events) or not runner.active_jobs:
            elapsed = time.perf_counter() - started
            while runner.active_jobs:
                runner.step()
            return elapsed


@dataclass
class PrefixTimes:
    """Medians, in seconds, of the time to turn 10's first token."""

    prompt_tokens: int
    cold: float
    warm: float
    restored: float


def measure(model: Path, runs: int, gpu_layers: int = 0, threads: int = 0) -> PrefixTimes:
    config = BackendConfig(
        model_path=model, slots=1, ctx_per_slot=4096, gpu_layers=gpu_layers, threads=threads
    )
    runner = ModelRunner(config, host_cache_mb=256)
    other = [
        {"role": "system", "content": "You answer questions about astronomy, briefly."},
        {"role": "user", "content": " ".join(["Describe the orbit of each planet."] * 12)},
    ]
    turn_9 = conversation(9)[:-1]  # ends with the ninth question
    cold, warm, restored = [], [], []
    history_tokens = 0
    for run in range(runs):
        # Turn 9 is answered on this sequence; then turn 10 arrives.
        runner.engine.clear_idle_caches()
        runner.engine.clear_host_cache()
        reply = answer(runner, f"turn9-{run}", turn_9)
        turn_10 = [
            *turn_9,
            {"role": "assistant", "content": reply},
            {"role": "user", "content": "Which of these topics is oldest?"},
        ]
        history_tokens = len(runner.prompt_tokens(turn_10))
        warm.append(first_token_s(runner, f"warm-{run}", turn_10))
        # Turn 9 again (greedy: the same answer), then another conversation takes the only
        # sequence before turn 10 arrives; turn 9's state goes to host RAM meanwhile.
        runner.engine.clear_idle_caches()
        runner.engine.clear_host_cache()
        answer(runner, f"again-{run}", turn_9)
        first_token_s(runner, f"other-{run}", other)
        restored.append(first_token_s(runner, f"restored-{run}", turn_10))
        runner.engine.clear_idle_caches()  # an empty cache: no reuse possible
        runner.engine.clear_host_cache()
        cold.append(first_token_s(runner, f"cold-{run}", turn_10))
    runner.close()
    median = statistics.median
    return PrefixTimes(history_tokens, median(cold), median(warm), median(restored))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", type=Path, default=None)
    parser.add_argument("--gpu-layers", type=int, default=0, help="-1: all")
    args = parser.parse_args()
    model = resolve_model_path(args.model, setting="--model")
    times = measure(model, args.runs, args.gpu_layers)
    cold_s, warm_s, restored_s = times.cold, times.warm, times.restored
    print(f"model: {model.name}; turn 10 prompt: {times.prompt_tokens} tokens; {args.runs} runs\n")
    print("| prefix reuse | time to first token (s) | ratio |")
    print("| --- | --- | --- |")
    print(f"| without | {cold_s:.3f} | 1.00 |")
    print(f"| with | {warm_s:.3f} | {warm_s / cold_s:.3f} |")
    print(f"| restored from host RAM | {restored_s:.3f} | {restored_s / cold_s:.3f} |")


if __name__ == "__main__":
    main()
