"""The Telegram adapter under load: many chats at once, through python-telegram-bot's real
HTTP stack against the local fake Bot API server (tests/bot/platforms/telegram/fake_bot_api.py).

Half of `--chats` chats are private, half groups. Each asks `--questions` questions, one
after the other (one conversation answers one message at a time), all chats at once. A
scripted agent streams each answer (`--words` words, `--token-delay` s apart) so the
adapter, not the model, is what is measured. The second run answers 429 (with
`retry_after`) to every tenth `editMessageText`.

Reported: replies delivered complete; Bot API calls per reply (sends, edits, drafts,
typing; not the long polls); the most edits one message got in any second (Telegram
allows about one) and the most draft updates one reply got in any second; the 429
answers; and the time from the update being queued to the final text of its answer,
minus the agent's own time (from the question reaching the chat service to its last
token).

    python benchmarks/telegram_load.py [--chats 50] [--questions 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


from benchmarks.chat_load import both_runs, most_in_window, p95, timed_core  # noqa: E402
from bot.platforms.telegram.adapter import TelegramAdapter  # noqa: E402
from bot.platforms.telegram.config import TelegramSettings  # noqa: E402
from storage.redis_conn import open_redis  # noqa: E402
from tests.bot.platforms.telegram.fake_bot_api import (  # noqa: E402
    TOKEN,
    Call,
    FakeBotApi,
    Json,
    group_chat,
    private_chat,
    user,
)


@dataclass
class Result:
    complete: int = 0
    calls_per_reply: float = 0.0
    most_edits_per_s: int = 0
    most_drafts_per_s: int = 0
    limited: int = 0
    overheads_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0


def _most_per_second(calls: list[Call], key: str) -> int:
    grouped: dict[object, list[float]] = defaultdict(list)
    for call in calls:
        if call.status == 200:
            grouped[(call.params.get("chat_id"), call.params.get(key))].append(call.at)
    return max((most_in_window(times, 1.0) for times in grouped.values()), default=0)


async def run_once(redis_url: str, args: argparse.Namespace, limited: bool) -> Result:
    redis = await open_redis(redis_url)
    await redis.flushdb()
    raw = await open_redis(redis_url, decode_responses=False)
    asker = user(4000, "Ann")
    chats: list[Json] = []
    for index in range(args.chats):
        if index % 2:
            chats.append(group_chat(-100_000 - index))
        else:
            chats.append(private_chat(user(5000 + index, f"P{index}")))
    answers = {
        f"question {chat['id']}-{n}": " ".join(f"{chat['id']}.{n}.{w}" for w in range(args.words))
        for chat in chats
        for n in range(args.questions)
    }
    core, chat_service = timed_core(redis, raw, answers, args.token_delay)
    api = FakeBotApi()
    await api.start()
    if limited:
        api.fail_next("editMessageText", 10**9, retry_after=1, every=10)
    settings = TelegramSettings(
        token=TOKEN, base_url=api.base_url, base_file_url=api.base_file_url, poll_timeout_s=1
    )
    adapter = TelegramAdapter(core, settings)
    stopping = asyncio.Event()
    running = asyncio.create_task(adapter.run(stopping))
    await asyncio.wait_for(adapter.ready.wait(), timeout=60)
    before = len(api.calls)
    queued: dict[str, float] = {}

    async def ask_in(chat: Json) -> None:
        sender = private_sender(chat)
        for n in range(args.questions):
            question = f"question {chat['id']}-{n}"
            queued[question] = time.monotonic()
            api.push(api.message(chat, sender, f"/ask {question}"))
            answer = answers[question]
            try:
                await api.wait_for(
                    lambda answer=answer: any(s.text == answer for s in api.sent),  # type: ignore[misc]
                    seconds=120,
                )
            except TimeoutError:
                shown = [s.text[:40] for s in api.sent_to(chat["id"])]
                raise RuntimeError(f"no answer to {question!r}; the chat shows {shown}") from None
            # The conversation takes the next question once the chat service is done with
            # this one (it holds the conversation until then).
            done = chat_service.answered.setdefault(question, asyncio.Event())
            await asyncio.wait_for(done.wait(), 120)

    def private_sender(chat: Json) -> Json:
        if chat["type"] == "private":
            return user(chat["id"], chat["first_name"])
        return asker

    started = time.monotonic()
    await asyncio.gather(*(ask_in(chat) for chat in chats))
    await asyncio.wait_for(adapter.in_flight.drained(), 120)
    result = Result(elapsed_s=time.monotonic() - started)
    final = {s.text: s for s in api.sent}
    for question, answer in answers.items():
        sent = final.get(answer)
        if sent is None:
            continue
        result.complete += 1
        took = sent.updated_at - queued[question] - chat_service.agent_s.get(question, 0.0)
        result.overheads_ms.append(took * 1000)
    calls = [call for call in api.calls[before:] if call.method != "getUpdates"]
    result.calls_per_reply = len(calls) / max(1, result.complete)
    result.limited = sum(1 for call in calls if call.status == 429)
    edits = [call for call in calls if call.method == "editMessageText"]
    result.most_edits_per_s = _most_per_second(edits, "message_id")
    drafts = [call for call in calls if call.method == "sendMessageDraft"]
    result.most_drafts_per_s = _most_per_second(drafts, "draft_id")
    stopping.set()
    await running
    await api.stop()
    await raw.aclose()
    await redis.aclose()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--chats", type=int, default=50)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--words", type=int, default=120)
    parser.add_argument("--token-delay", type=float, default=0.01)
    args = parser.parse_args()
    total = args.chats * args.questions
    rows = await both_runs("bench-telegram-", lambda url, limited: run_once(url, args, limited))
    print(
        f"{args.chats} chats (half private, half groups) x {args.questions} questions, "
        f"{args.words}-word answers streamed {args.token_delay * 1000:.0f} ms a word; "
        "fake Bot API on 127.0.0.1\n"
    )
    print(
        "| run | complete replies | Bot API calls / reply | 429 answers | most edits of a "
        "message in 1 s | most draft updates of a reply in 1 s | update to final text minus agent "
        "p50 (ms) | p95 (ms) | wall (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, result in rows:
        p50 = statistics.median(result.overheads_ms) if result.overheads_ms else 0.0
        print(
            f"| {label} | {result.complete}/{total} | {result.calls_per_reply:.1f} | "
            f"{result.limited} | {result.most_edits_per_s} | {result.most_drafts_per_s} | "
            f"{p50:.0f} | {p95(result.overheads_ms):.0f} | {result.elapsed_s:.1f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
