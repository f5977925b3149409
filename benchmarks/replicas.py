"""Several Telegram bot processes on one Redis, one SIGKILLed mid-run and restarted.

Three real bot processes (tests/bot/platforms/replica_process.py: the real
adapter and chat service, a scripted model answering "answer to: QUESTION" word by
word) serve one bot against the local fake Bot API server, which keeps updates pending
until a later offset confirms them and ends a second concurrent poll with 409. One
process polls at a time (a lease in Redis); the others stand by. `--conversations`
private chats each ask `--questions` questions, one after the other, all chats at
once. When a third of the answers are in, the polling process is SIGKILLed and
restarted a second later.

Reported: questions lost (no complete answer within `--timeout` s), doubled (two
answers or more), left cut (a message showing part of an answer at the end, unmarked),
marked interrupted (a cut message saying so, with the answer below it); the most
message calls (sends, edits, drafts) the bot made in any second against Telegram's
bot-wide limit of about 30; how long polling was without an owner after the kill; and
the time from a question to its complete answer, p50 and p95, for questions asked
answered before the kill, in flight at the kill (the extra time is the takeover's), and
asked after it.

With `--pool` the answers come from an inference worker in this process instead (a
scripted runner answering "You said: QUESTION"), which goes on writing when the bot
process that asked is killed: the process taking a question over finishes the cut
message from the worker's output instead of marking it and answering again.

    python benchmarks/replicas.py [--conversations 150] [--questions 3] [--pool]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.chat_load import most_in_window, p95  # noqa: E402
from bot.platforms.telegram.transport import BOT_MESSAGES_PER_S  # noqa: E402
from bot.reply_journal import INTERRUPTED  # noqa: E402
from inference.worker import Worker, WorkerConfig  # noqa: E402
from storage.embedded_redis import EmbeddedRedis  # noqa: E402
from storage.redis_conn import open_redis  # noqa: E402
from tests.bot.platforms.processes import ReplicaProcess as Replica  # noqa: E402
from tests.bot.platforms.telegram.fake_bot_api import (  # noqa: E402
    FakeBotApi,
    group_chat,
    private_chat,
    user,
)
from tests.inference.scripted_runner import ScriptedRunner  # noqa: E402

MESSAGE_CALLS = ("sendMessage", "editMessageText", "sendMessageDraft")


async def start_replica(api: FakeBotApi, redis_url: str, args: argparse.Namespace) -> Replica:
    return await Replica.start(
        "telegram",
        api.base_url,
        api.base_file_url,
        redis_url,
        str(args.role_ttl),
        REPLICA_TOKEN_DELAY_S=str(args.token_delay),
        REPLICA_MODEL="pool" if args.pool else "echo",
    )


@dataclass
class Question:
    chat_id: int
    text: str
    asked_at: float
    answer_prefix: str  # what the model answering says before the question
    answered_at: float | None = None

    @property
    def answer(self) -> str:
        return f"{self.answer_prefix}{self.text}"


@dataclass
class Run:
    questions: list[Question] = field(default_factory=list)
    most_granted: int = 0  # the most calls the bot-wide window in Redis held at once
    killed_at: float | None = None
    killed_was_polling: bool = False
    owner_again_at: float | None = None


async def converse(api: FakeBotApi, run: Run, index: int, args: argparse.Namespace) -> None:
    person = user(10_000 + index, f"P{index}")
    in_group = index % 2 == 0
    chat = group_chat(-100_000 - index) if in_group else private_chat(person)
    await asyncio.sleep(random.uniform(0, 2.0))  # people do not all start at once
    prefix = "You said: " if args.pool else "answer to: "
    for number in range(args.questions):
        text = f"question {number} from {index}"
        question = Question(chat["id"], text, time.monotonic(), prefix)
        run.questions.append(question)
        asked = f"/ask {question.text}" if in_group else question.text
        api.push(api.message(chat, person, asked))
        try:
            await api.wait_for(
                lambda q=question: any(s.text == q.answer for s in api.sent_to(q.chat_id)),  # type: ignore[misc]
                args.timeout,
            )
            question.answered_at = time.monotonic()
        except TimeoutError:
            pass  # lost: the conversation goes on


async def kill_one(
    api: FakeBotApi,
    replicas: list[Replica],
    run: Run,
    after: int,
    args: argparse.Namespace,
    url: str,
) -> None:
    while sum(q.answered_at is not None for q in run.questions) < after:  # noqa: ASYNC110
        await asyncio.sleep(0.05)  # a count over many tasks: sampled, not signalled
    victim = next((r for r in replicas if r.state == "polling"), random.choice(replicas))
    run.killed_was_polling = victim.state == "polling"
    await victim.kill()
    run.killed_at = time.monotonic()
    print(
        f"killed process {victim.process.pid} "
        f"({'polling' if run.killed_was_polling else 'standby'})",
        file=sys.stderr,
    )
    await asyncio.sleep(1.0)
    replicas.append(await start_replica(api, url, args))
    while run.owner_again_at is None:
        started = [r.since for r in replicas if r.state == "polling"]
        if started and started[0] > run.killed_at:
            run.owner_again_at = started[0]
        await asyncio.sleep(0.05)


async def watch_window(redis_url: str, run: Run) -> None:
    """Sample the bot-wide window in Redis: the calls it granted in the last second."""
    client = await open_redis(redis_url)
    try:
        while True:
            keys = [key async for key in client.scan_iter(match="pace:telegram:*", count=1000)]
            overall = [key for key in keys if key.count(":") == 2]
            for key in overall:
                now_ms = (await client.time())[0] * 1000
                granted = await client.zcount(key, now_ms - 1000, "+inf")
                run.most_granted = max(run.most_granted, granted)
            await asyncio.sleep(0.05)
    finally:
        await client.aclose()


def tally(api: FakeBotApi, run: Run) -> dict[str, int]:
    lost = doubled = cut = marked = 0
    for question in run.questions:
        shown = [
            s.text for s in api.sent_to(question.chat_id) if s.text.startswith(question.answer)
        ]
        complete = [text for text in shown if text == question.answer]
        if not complete and os.environ.get("REPLICAS_DEBUG"):
            texts = [s.text for s in api.sent_to(question.chat_id)]
            print("lost:", question.text, texts, file=sys.stderr)
        lost += not complete
        if len(shown) > 1 and os.environ.get("REPLICAS_DEBUG"):
            print("doubled:", question.text, shown, file=sys.stderr)
            for sent in api.sent_to(question.chat_id):
                print("   ", sent.message_id, sent.versions, file=sys.stderr)
        doubled += len(shown) > 1
    for sent in api.sent:
        wanted = [q.answer for q in run.questions if q.chat_id == sent.chat_id]
        if sent.text not in wanted and any(answer.startswith(sent.text) for answer in wanted):
            cut += 1
        marked += INTERRUPTED in sent.text
    return {"lost": lost, "doubled": doubled, "cut": cut, "marked": marked}


def latencies_ms(questions: list[Question]) -> tuple[float, float, int]:
    values = [(q.answered_at - q.asked_at) * 1000 for q in questions if q.answered_at is not None]
    if not values:
        return 0.0, 0.0, 0
    return statistics.median(values), p95(values), len(values)


async def benchmark(args: argparse.Namespace) -> None:
    random.seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="replicas-") as scratch:
        async with EmbeddedRedis(Path(scratch) / "redis") as redis_server:
            api = FakeBotApi()
            await api.start()
            pool = await start_pool(redis_server.url, args) if args.pool else None
            replicas = [
                await start_replica(api, redis_server.url, args) for _ in range(args.processes)
            ]
            try:
                async with asyncio.timeout(120):
                    while not any(r.state == "polling" for r in replicas):  # noqa: ASYNC110
                        await asyncio.sleep(0.1)  # set by each process's reader task
                run = Run()
                total = args.conversations * args.questions
                started = time.monotonic()
                killer = asyncio.create_task(
                    kill_one(api, replicas, run, total // 3, args, redis_server.url)
                )
                watcher = asyncio.create_task(watch_window(redis_server.url, run))
                await asyncio.gather(
                    *(converse(api, run, index, args) for index in range(args.conversations))
                )
                elapsed = time.monotonic() - started
                await asyncio.sleep(3.0)  # anything still to come (a second answer, were there one)
                killer.cancel()
                watcher.cancel()
                await asyncio.gather(killer, watcher, return_exceptions=True)
                report(api, run, elapsed, args)
            finally:
                for replica in replicas:
                    await replica.stop()
                if pool is not None:
                    await asyncio.to_thread(pool.stop)
                await api.stop()


async def start_pool(redis_url: str, args: argparse.Namespace) -> Worker:
    """An inference worker in this process (a scripted runner: "You said: QUESTION", a
    word per step), which goes on writing when a bot process dies."""
    runner = ScriptedRunner(slots=args.conversations, default_step_s=args.token_delay)
    worker = Worker(WorkerConfig(redis_url=redis_url, name="benchmark-pool"), lambda: runner)
    await asyncio.to_thread(worker.start)
    return worker


def report(api: FakeBotApi, run: Run, elapsed: float, args: argparse.Namespace) -> None:
    counts = tally(api, run)
    calls = [c.at for c in api.calls if c.method in MESSAGE_CALLS]
    killed = run.killed_at if run.killed_at is not None else float("inf")
    groups = (
        (
            "answered before the kill",
            [q for q in run.questions if (q.answered_at or killed) < killed],
        ),
        (
            "in flight at the kill",
            [q for q in run.questions if q.asked_at < killed <= (q.answered_at or killed)],
        ),
        ("asked after the kill", [q for q in run.questions if q.asked_at >= killed]),
    )
    gap = (
        f"{run.owner_again_at - run.killed_at:.1f} s"
        if run.owner_again_at is not None and run.killed_at is not None
        else "n/a"
    )
    print(
        f"{args.processes} processes, {args.conversations} conversations x {args.questions} "
        f"questions, {len(run.questions)} asked in {elapsed:.0f} s; the "
        f"{'polling' if run.killed_was_polling else 'standby'} process SIGKILLed after "
        f"{args.conversations * args.questions // 3} answers and restarted 1 s later\n"
    )
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| questions lost (no complete answer in {args.timeout:.0f} s) | {counts['lost']} |")
    print(f"| questions answered twice or more | {counts['doubled']} |")
    print(f"| messages left cut (unmarked) | {counts['cut']} |")
    print(f"| cut messages marked interrupted, answered below | {counts['marked']} |")
    print(
        f"| most message calls reaching the server in any second (limit about "
        f"{BOT_MESSAGES_PER_S}) | "
        f"{most_in_window(calls, 1.0) if calls else 0} |"
    )
    print(
        f"| most calls granted by the bot-wide window in Redis in any second | {run.most_granted} |"
    )
    print(f"| polling without an owner after the kill | {gap} |")
    for label, group in groups:
        p50, p95_ms, count = latencies_ms(group)
        print(
            f"| question to complete answer, {label} (p50 / p95, {count} answered) | "
            f"{p50:.0f} / {p95_ms:.0f} ms |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--conversations", type=int, default=150)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait per answer")
    parser.add_argument("--role-ttl", type=float, default=6.0, help="the polling lease, s")
    parser.add_argument("--token-delay", type=float, default=0.3, help="s per word answered")
    parser.add_argument(
        "--pool",
        action="store_true",
        help="answers come from a worker pool apart from the bot processes (cut replies "
        "are finished from it); without, each bot process runs its own scripted model",
    )
    parser.add_argument("--seed", type=int, default=7)
    asyncio.run(benchmark(parser.parse_args()))


if __name__ == "__main__":
    main()
