"""The worker's queue, cancels, recovery and start-up over a scripted runner: only Redis
is real here, so each test takes milliseconds. (Generation itself is tested with the
real model in the other files.)"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from inference.client import InferenceClient
from inference.errors import JobFailed, PoolBusy
from inference.protocol import (
    DEAD_LETTER_STREAM,
    JOBS_STREAM,
    WORKER_GROUP,
    Chunk,
    Job,
    cancel_key,
    output_stream,
    worker_key,
)
from inference.runner import Runner
from inference.tool_calls import ToolCall
from inference.worker import Worker, WorkerConfig, WorkerStartError
from storage.embedded_redis import EmbeddedRedis
from tests.inference.conftest import GREEDY, Pool, ask, text_of, until
from tests.inference.scripted_runner import ScriptedRunner, words

STORY = "Once upon a time a small fox found a lantern in the snow and carried it home."


async def output_of(redis_client: aioredis.Redis, job_id: str) -> list[Chunk]:
    entries = await redis_client.xrange(output_stream(job_id))
    return [Chunk.from_fields(fields, entry_id) for entry_id, fields in entries]


async def pending_count(redis_client: aioredis.Redis) -> int:
    return int((await redis_client.xpending(JOBS_STREAM, WORKER_GROUP))["pending"])


def test_the_model_runner_is_a_runner() -> None:
    from inference.model_runner import ModelRunner

    runner: type[Runner] = ModelRunner  # mypy checks the protocol; this checks at run time
    for name in ("tool_format", "free_slots", "active_jobs", "start", "step", "cancel", "stats"):
        assert hasattr(runner, name), name


async def test_a_job_streams_its_tokens_then_done_with_timings(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    worker, runner = pool.scripted()
    chunks = [chunk async for chunk in client.stream(ask("hello there"), GREEDY)]
    assert [chunk.text for chunk in chunks[:-1]] == words("You said: hello there")
    done = chunks[-1]
    assert (done.kind, done.finish_reason) == ("done", "stop")
    assert done.usage["completion_tokens"] == 4
    assert done.usage["queued_ms"] >= 0 and done.usage["first_output_ms"] >= 0
    assert runner.started[0].messages == ask("hello there")
    assert await pending_count(redis_client) == 0  # acknowledged with the last chunk
    assert await redis_client.ttl(output_stream(runner.started[0].job_id)) > 0
    registry = worker.metrics.registry
    assert registry.get_sample_value("inference_generated_tokens_total") == 4
    assert registry.get_sample_value("inference_jobs_total", {"outcome": "stop"}) == 1
    announced = await redis_client.hgetall(worker_key("scripted"))
    assert (announced["model"], announced["busy"], announced["jobs_done"]) == ("scripted", "0", "1")


async def test_max_tokens_cuts_the_answer(pool: Pool, client: InferenceClient) -> None:
    pool.scripted()
    chunks = [chunk async for chunk in client.stream(ask("a b c d e"), {"max_tokens": 2})]
    assert text_of(chunks) == "You said:"
    assert chunks[-1].finish_reason == "length"


async def test_tool_calls_and_errors_reach_the_requester(
    pool: Pool, client: InferenceClient
) -> None:
    _, runner = pool.scripted()
    call = ToolCall("call-1", "calculator", {"expression": "2+2"})
    runner.reply("add", [], tool_call=call)
    runner.reply("break", ["partial"], error="the model's grammar failed")
    runner.reply("too long", [], refuse="the prompt is too long for this model")
    chunks = [chunk async for chunk in client.stream(ask("add"), GREEDY)]
    assert [(c.kind, c.tool_name, c.text) for c in chunks[:-1]] == [
        ("tool_call", "calculator", '{"expression": "2+2"}')
    ]
    assert chunks[-1].finish_reason == "tool_calls"
    for question, message in [("break", "grammar failed"), ("too long", "too long")]:
        with pytest.raises(JobFailed, match=message):
            async for _ in client.stream(ask(question), GREEDY):
                pass
    assert (await anext(client.stream(ask("still serving"), GREEDY))).text == "You"


async def test_a_malformed_job_fails_alone(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    _, runner = pool.scripted()
    bad = Job(messages=ask("hi"), sampling={"temperature": -3})
    await redis_client.xadd(JOBS_STREAM, bad.to_fields())  # type: ignore[arg-type]
    await redis_client.xadd(JOBS_STREAM, {"id": "no-messages"})
    with pytest.raises(JobFailed, match=r"malformed job.*temperature"):
        async for _ in client.follow(bad.job_id):
            pass
    with pytest.raises(JobFailed, match="malformed job"):
        async for _ in client.follow("no-messages"):
            pass
    chunks = [chunk async for chunk in client.stream(ask("fine"), GREEDY)]
    assert chunks[-1].kind == "done"
    assert len(runner.started) == 1
    assert await pending_count(redis_client) == 0


async def test_closing_the_stream_cancels_the_job_at_once(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    # A long check interval for the cancel keys: the pub/sub message must do it.
    _, runner = pool.scripted(cancel_check_s=60)
    runner.reply("long", ["word "] * 10_000, step_s=0.01)
    stream = client.stream(ask("long"), {"max_tokens": 20_000})
    assert (await anext(stream)).text == "word "
    await stream.aclose()  # the requester went away
    job_id = runner.started[0].job_id
    await until(lambda: runner.cancelled == [job_id], timeout_s=2)
    chunks = await output_of(redis_client, job_id)
    assert chunks[-1].finish_reason == "cancelled"
    assert len(chunks) < 300  # stopped within a few steps, not at the end
    assert await pending_count(redis_client) == 0
    assert (await anext(client.stream(ask("next"), GREEDY))).text == "You"


async def test_a_cancel_missed_by_pub_sub_is_found_by_its_key(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    _, runner = pool.scripted(cancel_check_s=0.05)
    runner.reply("long", ["word "] * 10_000, step_s=0.01)
    job_id = await client.submit(ask("long"), {"max_tokens": 20_000})
    await until(lambda: runner.started)
    await redis_client.set(cancel_key(job_id), 1)  # no message on CANCEL_CHANNEL
    await until(lambda: runner.cancelled == [job_id], timeout_s=3)


async def test_a_job_cancelled_before_a_worker_takes_it_never_runs(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    await redis_client.xgroup_create(JOBS_STREAM, WORKER_GROUP, id="0", mkstream=True)
    job = Job(messages=ask("never"), sampling=GREEDY)
    await redis_client.xadd(JOBS_STREAM, job.to_fields())  # type: ignore[arg-type]
    await client.cancel(job.job_id)
    _, runner = pool.scripted()
    assert (await anext(client.stream(ask("later"), GREEDY))).text == "You"
    assert job.job_id not in runner.started_ids()
    assert [chunk.kind for chunk in await output_of(redis_client, job.job_id)] == []


async def test_a_stopped_worker_s_job_resumes_on_another_as_one_answer(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    first_runner, second_runner = ScriptedRunner(), ScriptedRunner()
    for runner in (first_runner, second_runner):
        runner.reply("story", words(STORY), step_s=0.02)
    first, _ = pool.scripted("first", first_runner, claim_idle_ms=300)
    stream = client.stream(ask("story"), GREEDY)
    seen = [await anext(stream) for _ in range(4)]
    first.stop()  # leaves the job pending, as a crashed worker would
    pool.scripted("second", second_runner, claim_idle_ms=300)
    rest = [chunk async for chunk in stream]
    # The second worker went on after what the first had written, not from the start.
    (resumed,) = second_runner.started
    written = [c for c in await output_of(redis_client, resumed.job_id) if c.kind == "delta"]
    assert resumed.already_generated >= len(seen)
    assert resumed.continue_from == "".join(c.text for c in written[: resumed.already_generated])
    reply = seen + rest
    assert text_of(reply) == STORY
    assert [chunk.kind for chunk in reply].count("done") == 1
    assert await pending_count(redis_client) == 0


async def test_a_running_job_stays_with_its_worker(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    # The job runs for several claim-idle periods: keeping it claimed stops another
    # worker from taking it over.
    runners = [ScriptedRunner(), ScriptedRunner()]
    for n, runner in enumerate(runners):
        runner.reply("slow", words(STORY), step_s=0.05)
        pool.scripted(f"w{n}", runner, claim_idle_ms=200, keepalive_s=0.05)
    chunks = [chunk async for chunk in client.stream(ask("slow"), GREEDY)]
    assert text_of(chunks) == STORY
    assert sorted(len(runner.started) for runner in runners) == [0, 1]


async def test_a_job_that_keeps_killing_workers_is_dead_lettered(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    job = Job(messages=ask("poison"), sampling=GREEDY)
    await redis_client.xgroup_create(JOBS_STREAM, WORKER_GROUP, id="0", mkstream=True)
    await redis_client.xadd(JOBS_STREAM, job.to_fields())  # type: ignore[arg-type]
    # A consumer that takes the job and dies, three times over.
    reply = await redis_client.xreadgroup(WORKER_GROUP, "ghost", {JOBS_STREAM: ">"}, count=1)
    entry_id = reply[0][1][0][0]
    for _ in range(2):
        await redis_client.xclaim(JOBS_STREAM, WORKER_GROUP, "ghost", 0, [entry_id])
    _, runner = pool.scripted(claim_idle_ms=50, max_deliveries=3)
    with pytest.raises(JobFailed, match="several inference workers"):
        async for _ in client.follow(job.job_id):
            pass
    dead = await redis_client.xrange(DEAD_LETTER_STREAM)
    assert [(fields["id"], fields["deliveries"]) for _, fields in dead] == [(job.job_id, "4")]
    assert await pending_count(redis_client) == 0
    assert runner.started == []


async def test_a_leftover_of_an_earlier_run_counts_as_a_delivery(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    # A job left pending by a worker that died and came back under the same name: taking
    # it back counts a delivery, so a job that kills its worker is dead-lettered anyway.
    job = Job(messages=ask("again"), sampling=GREEDY)
    await redis_client.xgroup_create(JOBS_STREAM, WORKER_GROUP, id="0", mkstream=True)
    await redis_client.xadd(JOBS_STREAM, job.to_fields())  # type: ignore[arg-type]
    reply = await redis_client.xreadgroup(WORKER_GROUP, "again", {JOBS_STREAM: ">"}, count=1)
    entry_id = reply[0][1][0][0]
    await redis_client.xclaim(JOBS_STREAM, WORKER_GROUP, "again", 0, [entry_id])
    worker, runner = pool.scripted("again", max_deliveries=3)
    chunks = [chunk async for chunk in client.follow(job.job_id)]  # third delivery: runs
    assert chunks[-1].kind == "done" and runner.started_ids() == [job.job_id]
    received = worker.metrics.registry.get_sample_value(
        "inference_handovers_total", {"direction": "received"}
    )
    assert not received


async def test_a_full_queue_answers_busy_at_once(pool: Pool, redis_client: aioredis.Redis) -> None:
    _, runner = pool.scripted(runner=ScriptedRunner(slots=1), lookahead=0)
    runner.reply("long", ["word "] * 10_000, step_s=0.01)
    client = InferenceClient(redis_client, max_queued=2)
    long_job = await client.submit(ask("long"), {"max_tokens": 20_000})
    stream = client.follow(long_job)
    await anext(stream)  # the only slot is busy now
    queued = [await client.submit(ask(f"q{i}"), GREEDY) for i in range(2)]
    await asyncio.sleep(0.6)  # the client trusts its look at the queue this long
    with pytest.raises(PoolBusy, match=r"try again in about \d+ s") as refused:
        await client.submit(ask("one more"), GREEDY)
    assert refused.value.wait_s >= 1
    for job_id in [long_job, *queued]:
        await client.cancel(job_id)
    await stream.aclose()


async def test_a_busy_community_does_not_starve_another(
    pool: Pool, client: InferenceClient
) -> None:
    _, runner = pool.scripted(runner=ScriptedRunner(slots=1))
    for n in range(4):
        runner.reply(f"topic {n}", ["x"] * 5, step_s=0.01)
    busy = [await client.submit(ask(f"topic {n}"), GREEDY, scope="discord:busy") for n in range(4)]
    quiet = await client.submit(ask("hello"), GREEDY, scope="discord:quiet")
    finished: list[str] = []

    async def wait_for(job_id: str) -> None:
        async for _ in client.follow(job_id):
            pass
        finished.append(job_id)

    await asyncio.gather(*(wait_for(job_id) for job_id in [*busy, quiet]))
    # Submitted last, the quiet community's job is not served last: it takes its turn
    # after at most two of the busy community's (the one running, and one admitted).
    assert finished.index(quiet) <= 2
    assert [job for job in finished if job != quiet] == busy  # a community keeps its order


# -- start-up -------------------------------------------------------------------------
def test_start_fails_at_once_when_redis_is_unreachable() -> None:
    worker = Worker(WorkerConfig(redis_url="redis://127.0.0.1:9/0"), ScriptedRunner)
    started = time.monotonic()
    with pytest.raises(WorkerStartError, match="cannot reach Redis"):
        worker.start()
    assert time.monotonic() - started < 10


def test_start_reports_a_runner_that_fails_to_load(redis_url: str) -> None:
    def broken() -> ScriptedRunner:
        raise WorkerStartError("no such model file")

    worker = Worker(WorkerConfig(redis_url=redis_url, name="broken"), broken)
    with pytest.raises(WorkerStartError, match="no such model file"):
        worker.start()


def test_start_fails_when_redis_goes_away_while_the_model_loads(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis")
    server.start()
    try:

        def load_while_redis_stops() -> ScriptedRunner:
            server.stop()
            return ScriptedRunner()

        worker = Worker(
            WorkerConfig(redis_url=server.url, name="orphan", startup_timeout_s=30),
            load_while_redis_stops,
        )
        started = time.monotonic()
        with pytest.raises(WorkerStartError, match="lost Redis while starting"):
            worker.start()
        assert time.monotonic() - started < 10
    finally:
        server.stop()
