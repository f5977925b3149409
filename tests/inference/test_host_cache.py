"""The host-RAM cache of evicted sequence states: the LRU itself, then the engine saving
and restoring states with the real SmolLM2 model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from inference.batch_engine import BatchEngine, JobDone, TextOut
from inference.host_cache import HostCache, common_prefix
from inference.llama_backend import BackendConfig
from inference.model_runner import ModelRunner
from inference.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0.0, seed=7, max_tokens=12)

# Two conversations with long, different first messages: each prompt is a couple of
# hundred tokens, so losing one's slot is worth saving (MIN_SAVED_TOKENS is 64).
TOPIC_A = "Tell me about the history of the river Thames and the bridges of London. " * 10
TOPIC_B = "Explain how bees build their hives and why the cells are hexagonal. " * 10
FOLLOW_UP = "Thanks. Now summarise that in one sentence."


# -- HostCache on its own --------------------------------------------------------------
def test_common_prefix() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0
    assert common_prefix((5,), [6]) == 0


def test_drops_least_recently_used_past_the_byte_bound() -> None:
    cache = HostCache(max_bytes=25)
    cache.put([1, 1], b"a" * 10)
    cache.put([2, 2], b"b" * 10)
    assert cache.best([1, 1, 9]) is not None  # using [1, 1] makes [2, 2] the oldest
    cache.put([3, 3], b"c" * 10)
    assert len(cache) == 2
    assert cache.bytes_used == 20
    assert cache.best([2, 2]) is None
    assert cache.best([1, 1]) == ([1, 1], b"a" * 10)
    assert cache.best([3, 3]) == ([3, 3], b"c" * 10)


def test_best_is_the_longest_common_prefix() -> None:
    cache = HostCache(max_bytes=1000)
    cache.put([1, 2, 3, 4], b"long")
    cache.put([1, 2, 9], b"short")
    cache.put([7, 8], b"other")
    assert cache.best([1, 2, 3, 5]) == ([1, 2, 3, 4], b"long")
    assert cache.best([1, 2, 9, 9]) == ([1, 2, 9], b"short")
    assert cache.best([7]) == ([7, 8], b"other")
    assert cache.best([5, 6]) is None  # sharing nothing is no match


def test_an_entry_larger_than_the_bound_is_not_stored() -> None:
    cache = HostCache(max_bytes=8)
    cache.put([1], b"x" * 8)
    assert not cache.put([2], b"y" * 9)
    assert cache.best([2]) is None
    assert cache.best([1]) == ([1], b"x" * 8)  # and nothing else was evicted for it


def test_zero_bytes_disables_it() -> None:
    cache = HostCache(max_bytes=0)
    assert not cache.enabled
    assert not cache.put([1, 2], b"x")
    assert cache.best([1, 2]) is None
    assert len(cache) == 0


def test_a_state_extending_another_replaces_it() -> None:
    cache = HostCache(max_bytes=1000)
    cache.put([1, 2], b"old")
    cache.put([1, 2, 3], b"newer")
    assert len(cache) == 1
    assert cache.bytes_used == len(b"newer")
    # A prefix of a stored state adds nothing: the stored one serves every prompt as well.
    assert not cache.put([1], b"p")
    assert cache.best([1, 2]) == ([1, 2, 3], b"newer")


def test_putting_the_same_tokens_again_replaces_the_data() -> None:
    cache = HostCache(max_bytes=1000)
    cache.put([1, 2], b"one")
    cache.put([1, 2], b"three")
    assert len(cache) == 1
    assert cache.bytes_used == len(b"three")
    assert cache.best([1, 2]) == ([1, 2], b"three")


def test_discard_and_clear() -> None:
    cache = HostCache(max_bytes=1000)
    cache.put([1], b"a")
    cache.put([2], b"b")
    cache.discard([1])
    assert cache.best([1]) is None
    cache.clear()
    assert len(cache) == 0
    assert cache.bytes_used == 0


# -- the engine with the real model ----------------------------------------------------
RunnerFactory = Callable[..., ModelRunner]


@pytest.fixture
def make_runner(model_path: Path) -> Iterator[RunnerFactory]:
    runners: list[ModelRunner] = []

    def make(slots: int = 1, host_cache_mb: int = 0, prefill_chunk: int = 256) -> ModelRunner:
        # One thread: other jobs share this machine's few cores, and llama.cpp's threads
        # wait for each other by spinning, which oversubscribed cores turn into stalls.
        config = BackendConfig(model_path=model_path, slots=slots, ctx_per_slot=1024, threads=1)
        runner = ModelRunner(config, prefill_chunk=prefill_chunk, host_cache_mb=host_cache_mb)
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.close()


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def run(engine: BatchEngine, job_id: str, prompt: list[int]) -> tuple[str, JobDone]:
    """Run one job alone to its end; returns its text and its JobDone."""
    engine.admit(job_id, prompt, GREEDY)
    text: list[str] = []
    while True:
        for event in engine.step():
            if isinstance(event, TextOut):
                text.append(event.text)
            else:
                return "".join(text), event


def next_turn(runner: ModelRunner, first: str, answer: str) -> list[int]:
    """The prompt of a conversation's second turn, after `answer` to `first`."""
    return runner.prompt_tokens(
        [user(first), {"role": "assistant", "content": answer}, user(FOLLOW_UP)]
    )


def reference(make_runner: RunnerFactory, prompt: list[int]) -> str:
    """What a fresh engine without the host cache answers, reading `prompt` in full."""
    text, done = run(make_runner().engine, "reference", prompt)
    assert done.reused_tokens == 0
    return text


@pytest.mark.model
def test_a_turn_resumes_from_the_host_cache_after_losing_its_slot(
    make_runner: RunnerFactory,
) -> None:
    runner = make_runner(slots=1, host_cache_mb=64)
    prompt_a = runner.prompt_tokens([user(TOPIC_A)])
    assert len(prompt_a) > 150
    answer_a, _ = run(runner.engine, "a1", prompt_a)
    run(runner.engine, "b1", runner.prompt_tokens([user(TOPIC_B)]))  # takes A's only slot
    assert len(runner.engine.host_cache) == 1

    turn = next_turn(runner, TOPIC_A, answer_a)
    text, done = run(runner.engine, "a2", turn)

    assert done.restored_tokens == done.reused_tokens
    assert done.reused_tokens >= len(prompt_a)
    assert text == reference(make_runner, turn)


@pytest.mark.model
def test_without_the_host_cache_the_turn_reads_its_history_again(
    make_runner: RunnerFactory,
) -> None:
    runner = make_runner(slots=1, host_cache_mb=0)
    prompt_a = runner.prompt_tokens([user(TOPIC_A)])
    prompt_b = runner.prompt_tokens([user(TOPIC_B)])
    answer_a, _ = run(runner.engine, "a1", prompt_a)
    run(runner.engine, "b1", prompt_b)

    turn = next_turn(runner, TOPIC_A, answer_a)
    _, done = run(runner.engine, "a2", turn)

    # Only the chat template's opening, which B's prompt shares, is left to reuse.
    assert done.reused_tokens == common_prefix(prompt_b, turn)
    assert done.reused_tokens < len(prompt_a) // 4
    assert done.restored_tokens == 0
    assert len(runner.engine.host_cache) == 0


@pytest.mark.model
def test_a_state_restores_into_another_sequence(make_runner: RunnerFactory) -> None:
    runner = make_runner(slots=2, host_cache_mb=64)
    engine = runner.engine
    prompt_a = runner.prompt_tokens([user(TOPIC_A)])
    answer_a, _ = run(engine, "a1", prompt_a)
    # Save A's sequence (0) and empty every sequence: A's next turn can only come back
    # through a restore, into sequence 1 (never used), not the one it was saved from.
    saved_from = engine._slots[0]
    engine.host_cache.put(saved_from.cached, engine.backend.save_sequence(saved_from.seq_id))
    engine.clear_idle_caches()

    turn_a = next_turn(runner, TOPIC_A, answer_a)
    text, done = run(engine, "a2", turn_a)
    assert done.restored_tokens >= len(prompt_a)
    assert engine._slots[1].cached[: len(turn_a)] == turn_a
    assert text == reference(make_runner, turn_a)


@pytest.mark.model
def test_cancelled_prefill_and_cleared_caches_still_restore_correctly(
    make_runner: RunnerFactory,
) -> None:
    # A small prefill chunk: B is still reading its prompt when it is cancelled.
    runner = make_runner(slots=1, host_cache_mb=64, prefill_chunk=32)
    engine = runner.engine
    prompt_a = runner.prompt_tokens([user(TOPIC_A)])
    answer_a, _ = run(engine, "a1", prompt_a)
    engine.admit("b1", runner.prompt_tokens([user(TOPIC_B)]), GREEDY)
    engine.step()
    done_b = engine.cancel("b1")
    assert done_b is not None
    assert done_b.reason == "cancelled"
    engine.clear_idle_caches()  # the host cache survives this

    turn = next_turn(runner, TOPIC_A, answer_a)
    text, done = run(engine, "a2", turn)
    assert done.restored_tokens >= len(prompt_a)
    assert text == reference(make_runner, turn)

    engine.clear_idle_caches()
    engine.clear_host_cache()
    _, cold = run(engine, "a3", turn)
    assert cold.reused_tokens == 0
