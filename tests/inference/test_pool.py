"""The worker pool with real Redis: generation with the real SmolLM2 model, the rest over
a scripted runner."""

from __future__ import annotations

import asyncio
import socket
import time
import urllib.request

import pytest

from inference.client import InferenceClient
from inference.errors import InvalidJob, JobFailed, PoolUnavailable
from inference.protocol import JOBS_STREAM, Job, output_stream
from inference.status import pool_status
from inference.status_http import StatusServer
from tests.inference.conftest import GREEDY, QUESTIONS, ask, complete, text_of
from tests.inference.scripted_runner import ScriptedRunner


@pytest.mark.model
async def test_a_job_streams_text_then_done(worker, client) -> None:
    chunks = await complete(client, QUESTIONS[0])
    deltas = [chunk for chunk in chunks if chunk.kind == "delta"]
    assert len(deltas) > 1
    assert text_of(chunks).strip()
    assert chunks[-1].kind == "done"
    assert chunks[-1].finish_reason in ("stop", "length")
    assert 0 < len(deltas) <= chunks[-1].usage["completion_tokens"]


@pytest.mark.model
async def test_concurrent_jobs_each_get_their_own_text(worker, client) -> None:
    alone = [text_of(await complete(client, question)) for question in QUESTIONS]
    together = await asyncio.gather(*(complete(client, question) for question in QUESTIONS))
    assert [text_of(chunks) for chunks in together] == alone
    assert len(set(alone)) == len(alone)


@pytest.mark.model
async def test_closing_the_stream_cancels_the_job_and_frees_the_slot(
    worker, client, redis_client
) -> None:
    stream = client.stream(ask("Tell me a very long story."), {**GREEDY, "max_tokens": 2000})
    first = await anext(stream)
    assert first.kind == "delta"
    await stream.aclose()  # the requester went away
    deadline = time.monotonic() + 20
    job_output = None
    while time.monotonic() < deadline:
        keys = [key async for key in redis_client.scan_iter(match="inference:out:*")]
        entries = [await redis_client.xrevrange(key, count=1) for key in keys]
        finished = [entry for entry in entries if entry and entry[0][1].get("kind") == "done"]
        if finished:
            job_output = finished[0][0][1]
            break
        await asyncio.sleep(0.1)
    assert job_output is not None and job_output["finish_reason"] == "cancelled"
    # Both slots serve again.
    answers = await asyncio.gather(complete(client, QUESTIONS[1]), complete(client, QUESTIONS[2]))
    assert all(chunks[-1].kind == "done" for chunks in answers)


async def test_bad_sampling_is_refused_before_queueing(pool, client, redis_client) -> None:
    pool.scripted()
    with pytest.raises(InvalidJob, match="temperature"):
        await complete(client, "hi", temperature=9)
    with pytest.raises(InvalidJob, match="top_k"):
        await complete(client, "hi", top_k="many")
    assert await redis_client.xlen(JOBS_STREAM) == 0


@pytest.mark.model
async def test_a_prompt_longer_than_the_context_fails_alone(worker, client) -> None:
    with pytest.raises(JobFailed, match="too long"):
        await complete(client, "word " * 3000)
    assert (await complete(client, QUESTIONS[0]))[-1].kind == "done"


async def test_a_reconnecting_client_resumes_where_it_left(pool, client, redis_client) -> None:
    pool.scripted()
    job = Job(messages=ask(QUESTIONS[0]), sampling=GREEDY)
    await redis_client.xadd(JOBS_STREAM, job.to_fields())
    full = [chunk async for chunk in client.follow(job.job_id)]
    assert [chunk.entry_id for chunk in full] == [
        entry_id for entry_id, _ in await redis_client.xrange(output_stream(job.job_id))
    ]
    rest = [chunk async for chunk in client.follow(job.job_id, resume_from=full[2].entry_id)]
    assert rest == full[3:]


async def test_no_worker_means_a_clear_error(redis_client) -> None:
    client = InferenceClient(redis_client)
    with pytest.raises(PoolUnavailable, match=r"python -m inference\.worker"):
        await anext(client.stream(ask("hi"), GREEDY))


async def test_status_lists_workers_and_the_queue(pool, client, redis_client) -> None:
    pool.scripted("test-worker", ScriptedRunner(model_name="SmolLM2-135M-Instruct"))
    await complete(client, QUESTIONS[0])
    text = await pool_status(redis_client)
    assert "test-worker" in text
    assert "SmolLM2-135M-Instruct" in text
    assert " json " in text  # the runner's tool-call format
    assert "0/2" in text  # idle, two slots
    assert text.splitlines()[-1] == "queue: 0 waiting, 0 running, 0 dead-lettered"


async def test_status_without_workers_says_how_to_start_one(redis_client) -> None:
    text = await pool_status(redis_client)
    assert "python -m inference.worker" in text


async def test_the_worker_counts_what_it_does_and_serves_metrics(pool, client) -> None:
    worker, _ = pool.scripted()
    chunks = await complete(client, QUESTIONS[0])
    done = chunks[-1]
    registry = worker.metrics.registry

    def value(name: str, **labels: str) -> float:
        found = registry.get_sample_value(name, labels)
        assert found is not None, name
        return found

    assert value("inference_generated_tokens_total") == done.usage["completion_tokens"]
    assert value("inference_prompt_tokens_total") == done.usage["prompt_tokens"]
    assert value("inference_jobs_total", outcome=done.finish_reason) == 1
    assert value("inference_time_to_first_token_seconds_count") == 1
    assert value("inference_step_seconds_count") >= done.usage["completion_tokens"]
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with StatusServer(registry, worker.health_problem, port, address="127.0.0.1"):
        text = await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/metrics")
        assert "inference_generated_tokens_total" in text
        assert "inference_queue_wait_seconds_bucket" in text
        # Loaded, looping and heartbeating: healthy.
        assert await asyncio.to_thread(fetch, f"http://127.0.0.1:{port}/healthz") == "ok\n"
    assert worker.health_problem() is None


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())
