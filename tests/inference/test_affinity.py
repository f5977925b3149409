"""Where a job runs: a conversation's next turn goes to the worker caching it, and a job
naming a model to a worker serving that model."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from langchain_core.messages import HumanMessage

from inference.chat_model import PoolChatModel
from inference.client import InferenceClient
from inference.errors import InvalidJob
from inference.metrics import WorkerMetrics
from inference.protocol import (
    JOBS_STREAM,
    WORKER_GROUP,
    WORKER_HEARTBEAT_TTL_S,
    Chunk,
    Job,
    affinity_key,
    output_stream,
    worker_key,
)
from inference.worker import Worker, WorkerConfig
from inference.worker.handover import Handover
from inference.worker.queue import JobQueue
from tests.inference.conftest import GREEDY, Pool, ask, text_of, until
from tests.inference.scripted_runner import ScriptedRunner

SAMPLING = {**GREEDY, "max_tokens": 12}
QUESTION = "Tell me about cats."


def next_turn(first: list[Chunk]) -> list[dict[str, str]]:
    """The conversation after the first answer, with a new question."""
    return [
        *ask(QUESTION),
        {"role": "assistant", "content": text_of(first)},
        {"role": "user", "content": "And dogs?"},
    ]


def handovers(worker: Worker | Handover, direction: str) -> float:
    found = worker.metrics.registry.get_sample_value(
        "inference_handovers_total", {"direction": direction}
    )
    return found or 0.0


async def answer(client: InferenceClient, job_id: str) -> list[Chunk]:
    return [chunk async for chunk in client.follow(job_id)]


async def read_as(redis_client: aioredis.Redis, job: Job, consumer: str) -> str:
    """Queue `job` and deliver it to `consumer` at once, in one transaction, so none of
    the running workers (blocked on the stream) reads it first. Returns its entry id."""
    pipe = redis_client.pipeline(transaction=True)
    pipe.xadd(JOBS_STREAM, job.to_fields())  # type: ignore[arg-type]
    pipe.xreadgroup(WORKER_GROUP, consumer, {JOBS_STREAM: ">"}, count=1)
    entry_id, _ = await pipe.execute()
    return str(entry_id)


@pytest.fixture
def sync_redis(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


def router(sync_redis: redis.Redis, name: str, model_name: str = "") -> Handover:
    """What a worker named `name` serving `model_name` does with the jobs it reads."""
    config = WorkerConfig(redis_url="", name=name, model_name=model_name)
    metrics = WorkerMetrics()
    return Handover(JobQueue(sync_redis, config, metrics), config, metrics, model_name)


async def announce(
    redis_client: aioredis.Redis, name: str, age_s: float, model: str = "m", free: int = 1
) -> None:
    """A worker hash with `free` free slots, as if announced `age_s` seconds ago."""
    key = worker_key(name)
    await redis_client.hset(key, mapping={"model": model, "slots": free, "busy": 0})
    await redis_client.pexpire(key, round(1000 * (WORKER_HEARTBEAT_TTL_S - age_s)))


def test_the_affinity_key_travels_with_the_job_only_when_set() -> None:
    plain = Job(messages=ask("hi"), sampling={})
    assert "affinity" not in plain.to_fields()
    keyed = Job(messages=ask("hi"), sampling={}, affinity="discord:1:2")
    assert Job.from_fields(keyed.to_fields()) == keyed
    assert Job.from_fields(plain.to_fields()).affinity == ""


async def test_a_handed_over_entry_is_taken_as_its_first_delivery(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    await redis_client.xgroup_create(JOBS_STREAM, WORKER_GROUP, id="0", mkstream=True)
    jobs = [Job(messages=ask(f"q{n}"), sampling=SAMPLING, affinity="conv") for n in range(2)]
    entry_ids = [await read_as(redis_client, job, "sender") for job in jobs]
    for entry_id in entry_ids:  # what the sender's handover does
        await redis_client.xclaim(
            JOBS_STREAM, WORKER_GROUP, "receiver", 0, [entry_id], justid=True, retrycount=0
        )
    await redis_client.xdel(JOBS_STREAM, entry_ids[1])  # trimmed before it was taken
    runner = ScriptedRunner()
    runner.reply("q0", ["a "] * 200, step_s=0.01)
    receiver, _ = pool.scripted("receiver", runner)
    await until(lambda: runner.started)
    pending = await redis_client.xpending_range(JOBS_STREAM, WORKER_GROUP, "-", "+", 10)
    # The trimmed one is acknowledged; the other counts one delivery, not two.
    assert [(p["message_id"], p["times_delivered"]) for p in pending] == [(entry_ids[0], 1)]
    assert handovers(receiver, "received") == 1
    assert runner.started_ids() == [jobs[0].job_id]
    await client.cancel(jobs[0].job_id)


@pytest.mark.model
async def test_the_next_turn_runs_where_the_conversation_is_cached(
    pool: Pool, model_path: Path, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    workers = [pool.real(model_path, name, slots=2) for name in ("a", "b")]
    first = [chunk async for chunk in client.stream(ask(QUESTION), SAMPLING, affinity="conv")]
    holder = await redis_client.get(affinity_key("conv"))
    assert holder in ("a", "b")
    # Whichever worker reads the second turn, the holder runs it: the other hands it over.
    second = [chunk async for chunk in client.stream(next_turn(first), SAMPLING, affinity="conv")]
    assert await redis_client.get(affinity_key("conv")) == holder
    assert second[-1].usage["cached_prompt_tokens"] >= first[-1].usage["prompt_tokens"]
    sent = sum(handovers(worker, "sent") for worker in workers)
    received = sum(handovers(worker, "received") for worker in workers)
    assert sent == received <= 1


async def test_a_worker_hands_the_next_turn_to_the_worker_caching_it(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis, sync_redis: redis.Redis
) -> None:
    holder, runner = pool.scripted("holder", ScriptedRunner(slots=1))
    first = [chunk async for chunk in client.stream(ask(QUESTION), SAMPLING, affinity="conv")]
    assert await redis_client.get(affinity_key("conv")) == "holder"
    # Another worker reads the second turn from the stream.
    sender = router(sync_redis, "sender")
    job = Job(messages=next_turn(first), sampling=SAMPLING, affinity="conv")
    entry_id = await read_as(redis_client, job, "sender")
    assert await asyncio.to_thread(sender.route, [(entry_id, job.to_fields())]) == []
    second = await answer(client, job.job_id)
    assert second[-1].kind == "done"
    assert runner.started_ids()[-1] == job.job_id
    assert handovers(sender, "sent") == 1
    assert handovers(holder, "received") == 1


async def test_an_affinity_to_a_dead_worker_runs_the_job_anyway(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    await redis_client.set(affinity_key("conv"), "gone")  # no worker key: it stopped
    worker, _ = pool.scripted("alive")
    chunks = [chunk async for chunk in client.stream(ask(QUESTION), SAMPLING, affinity="conv")]
    assert chunks[-1].kind == "done"
    assert await redis_client.get(affinity_key("conv")) == "alive"
    assert handovers(worker, "sent") == 0


async def test_a_worker_silent_for_seconds_is_handed_nothing(
    redis_client: aioredis.Redis, sync_redis: redis.Redis
) -> None:
    await redis_client.xgroup_create(JOBS_STREAM, WORKER_GROUP, id="0", mkstream=True)
    await announce(redis_client, "silent", age_s=8)  # its hash has not expired yet
    await announce(redis_client, "recent", age_s=1)
    entries = []
    for holder in ("silent", "recent"):
        await redis_client.set(affinity_key(holder), holder)
        job = Job(messages=ask("hi"), sampling=SAMPLING, affinity=holder)
        entries.append((await read_as(redis_client, job, "sender"), job.to_fields()))
    kept = await asyncio.to_thread(router(sync_redis, "sender").route, entries)
    assert kept == entries[:1]  # the silent worker's job stays with the sender
    pending = await redis_client.xpending_range(JOBS_STREAM, WORKER_GROUP, "-", "+", 10)
    assert {p["message_id"]: p["consumer"] for p in pending} == {
        entries[0][0]: "sender",
        entries[1][0]: "recent",
    }


async def test_a_job_handed_to_a_worker_that_never_takes_it_is_recovered(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    # A worker that announced a free slot a moment ago and then hung (or died).
    await announce(redis_client, "ghost", age_s=0)
    await redis_client.set(affinity_key("conv"), "ghost")
    rescuer, _ = pool.scripted("rescuer", claim_idle_ms=300)
    chunks = [chunk async for chunk in client.stream(ask(QUESTION), SAMPLING, affinity="conv")]
    assert chunks[-1].kind == "done"
    assert handovers(rescuer, "sent") == 1  # it went to the ghost first
    assert await redis_client.get(affinity_key("conv")) == "rescuer"
    assert (await redis_client.xpending(JOBS_STREAM, WORKER_GROUP))["pending"] == 0


async def test_a_handed_over_job_is_not_handed_on(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    (a, _), (b, b_runner) = pool.scripted("a"), pool.scripted("b")
    # The affinity names "a", idle and alive; yet "b" got the job handed over (say "a"
    # looked full to the sender): "b" runs it rather than sending it on.
    await redis_client.set(affinity_key("conv"), "a")
    job = Job(messages=ask(QUESTION), sampling=SAMPLING, affinity="conv")
    entry_id = await read_as(redis_client, job, "sender")
    await redis_client.xclaim(
        JOBS_STREAM, WORKER_GROUP, "b", 0, [entry_id], justid=True, retrycount=0
    )
    chunks = await answer(client, job.job_id)
    assert chunks[-1].kind == "done"
    assert b_runner.started_ids() == [job.job_id]
    assert await redis_client.get(affinity_key("conv")) == "b"
    assert handovers(b, "received") == 1
    assert handovers(a, "received") == handovers(b, "sent") == 0


async def test_the_chat_model_passes_the_affinity(
    pool: Pool, client: InferenceClient, redis_client: aioredis.Redis
) -> None:
    pool.scripted("w")
    model = PoolChatModel(client=client, sampling=SAMPLING)
    await model.ainvoke([HumanMessage(QUESTION)], affinity="conv-lc")
    assert await redis_client.get(affinity_key("conv-lc")) == "w"
    bound = PoolChatModel(client=client, sampling=SAMPLING, affinity="conv-bound")
    await bound.ainvoke([HumanMessage(QUESTION)])
    assert await redis_client.get(affinity_key("conv-bound")) == "w"


async def test_a_job_for_a_model_no_worker_serves_is_refused_at_once(
    redis_client: aioredis.Redis,
) -> None:
    await announce(redis_client, "w1", age_s=0, model="smol")
    await announce(redis_client, "w2", age_s=0, model="qwen")
    client = InferenceClient(redis_client)
    with pytest.raises(InvalidJob, match=r"no worker serves the model 'llama'.*qwen, smol"):
        await client.submit(ask("hi"), {}, model="llama")
    job_id = await client.submit(ask("hi"), {}, model="qwen")
    (entry,) = await redis_client.xrange(JOBS_STREAM)  # only the served one was queued
    queued = Job.from_fields(entry[1])
    assert (queued.job_id, queued.model) == (job_id, "qwen")


@pytest.mark.parametrize("fresh", [True, False])
async def test_a_job_for_another_model_goes_to_a_worker_serving_it(
    redis_client: aioredis.Redis, sync_redis: redis.Redis, fresh: bool
) -> None:
    await redis_client.xgroup_create(JOBS_STREAM, WORKER_GROUP, id="0", mkstream=True)
    await announce(redis_client, "qwen-busy", age_s=1, model="qwen", free=0)
    await announce(redis_client, "qwen-free", age_s=1, model="qwen", free=2)
    await announce(redis_client, "llama-silent", age_s=9, model="llama")  # may be dead
    sender = router(sync_redis, "sender", model_name="smol")
    jobs = [
        Job(messages=ask("hi"), sampling=SAMPLING, model=m) for m in ("qwen", "llama", "smol", "")
    ]
    entries = [(await read_as(redis_client, job, "sender"), job.to_fields()) for job in jobs]
    kept = await asyncio.to_thread(sender.route, entries, fresh)
    assert kept == entries[2:]  # its own model, and any model, run here
    pending = await redis_client.xpending_range(JOBS_STREAM, WORKER_GROUP, "-", "+", 10)
    where = {p["message_id"]: (p["consumer"], p["times_delivered"]) for p in pending}
    # A fresh job counts its first delivery on the receiver; a reclaimed one keeps its count.
    assert where[entries[0][0]] == ("qwen-free", 0 if fresh else 1)
    assert entries[1][0] not in where  # no live worker serves it: failed and acknowledged
    error = await redis_client.xrange(output_stream(jobs[1].job_id))
    assert Chunk.from_fields(error[0][1]).text == "no worker serves the model 'llama' now"


async def test_a_job_naming_the_model_runs_on_the_worker_serving_it(
    pool: Pool, client: InferenceClient
) -> None:
    _, runner = pool.scripted("w", model_name="smol")
    chunks = [chunk async for chunk in client.stream(ask(QUESTION), SAMPLING, model="smol")]
    assert chunks[-1].kind == "done"
    model = PoolChatModel(client=client, sampling=SAMPLING, model="smol")
    assert (await model.ainvoke([HumanMessage(QUESTION)])).text == runner.answer_to(QUESTION)
