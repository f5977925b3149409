"""The Discord adapter under load: many channels at once, through the real discord.py
client against the local fake Discord (tests/bot/platforms/discord/fake_discord.py).

Each of `--channels` channels asks `--questions` questions, one after the other (one
conversation answers one message at a time), all channels at once. A scripted agent
streams each answer (`--words` words, `--token-delay` s apart) so the adapter, not the
model, is what is measured. The second run answers 429 (with `retry_after`, as Discord
does behind Cloudflare) on every tenth message edit.

Reported: replies delivered complete; REST calls per reply (sends, edits, typing); the
most message sends and edits Discord accepted on one channel in any 5 s window
(Discord allows 5); the 429 answers; and the time
from the gateway dispatch of a question to the final edit of its answer, minus the
agent's own time (from the question reaching the chat service to its last token).

    python benchmarks/discord_load.py [--channels 50] [--questions 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402

from benchmarks.chat_load import both_runs, most_in_window, p95, timed_core  # noqa: E402
from bot.platforms.discord.adapter import DiscordAdapter  # noqa: E402
from bot.platforms.discord.config import DiscordSettings  # noqa: E402
from storage.redis_conn import open_redis  # noqa: E402
from tests.bot.platforms.discord.fake_discord import FakeDiscord  # noqa: E402
from tests.bot.platforms.discord.fake_world import BOT_ID, TOKEN  # noqa: E402

FIRST_CHANNEL = 5000
WINDOW_S = 5.0


@dataclass
class Result:
    complete: int = 0
    replies: int = 0
    calls_per_reply: float = 0.0
    max_window: int = 0
    limited: int = 0
    overheads_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0


async def run_once(redis_url: str, args: argparse.Namespace, limited: bool) -> Result:
    redis = await open_redis(redis_url)
    await redis.flushdb()
    raw = await open_redis(redis_url, decode_responses=False)
    channels = [FIRST_CHANNEL + index for index in range(args.channels)]
    answers = {
        f"question {channel}-{n}": " ".join(f"{channel}.{n}.{w}" for w in range(args.words))
        for channel in channels
        for n in range(args.questions)
    }
    core, chat = timed_core(redis, raw, answers, args.token_delay)
    fake = FakeDiscord(extra_channels=channels)
    await fake.start()
    if limited:
        fake.rate_limit(
            "PATCH", r"/channels/\d+/messages/\d+", times=10**9, every=10, retry_after=1.0
        )
    settings = DiscordSettings(token=SecretStr(TOKEN), api_url=fake.api_url)
    adapter = DiscordAdapter(core, settings)
    stopping = asyncio.Event()
    running = asyncio.create_task(adapter.run(stopping))
    await fake.wait_for(lambda: bool(fake.identifies))
    await asyncio.wait_for(adapter.ready.wait(), timeout=60)
    before = len(fake.calls)
    dispatched: dict[str, float] = {}
    question_ids: dict[str, int] = {}

    async def ask_in(channel: int) -> None:
        for n in range(args.questions):
            question = f"question {channel}-{n}"
            dispatched[question] = time.monotonic()
            question_ids[question] = await fake.message(
                f"<@{BOT_ID}> {question}", channel=channel, mentions_bot=True
            )
            answered = chat.answered.setdefault(question, asyncio.Event())
            try:  # the next question only once this conversation is free again
                await asyncio.wait_for(answered.wait(), timeout=120)
            except TimeoutError:
                print(f"no answer to {question!r} within 120 s", file=sys.stderr)
                return

    started = time.monotonic()
    await asyncio.gather(*(ask_in(channel) for channel in channels))
    result = Result(elapsed_s=time.monotonic() - started)
    by_reference = {
        m["message_reference"]["message_id"]: m
        for m in fake.messages.values()
        if "message_reference" in m
    }
    for question, answer in answers.items():
        reply = by_reference.get(str(question_ids.get(question)))  # never asked: None
        if reply is None:
            continue
        result.replies += 1
        if reply["content"] == answer:
            result.complete += 1
            final_at = fake.updated_at[int(reply["id"])]
            took = final_at - dispatched[question] - chat.agent_s.get(question, 0.0)
            result.overheads_ms.append(took * 1000)
    calls = fake.calls[before:]
    result.calls_per_reply = len(calls) / max(1, result.replies)
    result.limited = sum(1 for call in calls if call.status == 429)
    # What Discord accepted: a call answered 429 was refused (and is sent again).
    accepted = [call for call in calls if call.status < 300]
    result.max_window = max(
        most_in_window(
            [call.at for call in accepted if call.path.startswith(f"/channels/{channel}/messages")],
            WINDOW_S,
        )
        for channel in channels
    )
    stopping.set()
    await running
    await fake.close()
    await raw.aclose()
    await redis.aclose()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--channels", type=int, default=50)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--words", type=int, default=120)
    parser.add_argument("--token-delay", type=float, default=0.01)
    args = parser.parse_args()
    total = args.channels * args.questions
    rows = await both_runs("bench-discord-", lambda url, limited: run_once(url, args, limited))
    print(
        f"{args.channels} channels x {args.questions} questions, {args.words}-word answers "
        f"streamed {args.token_delay * 1000:.0f} ms a word; fake Discord on 127.0.0.1\n"
    )
    print(
        "| run | complete replies | REST calls / reply | 429 answers | most message calls on "
        "a channel in 5 s | dispatch to final edit minus agent p50 (ms) | p95 (ms) | wall (s) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for label, result in rows:
        p50 = statistics.median(result.overheads_ms) if result.overheads_ms else 0.0
        print(
            f"| {label} | {result.complete}/{total} | {result.calls_per_reply:.1f} | "
            f"{result.limited} | "
            f"{result.max_window} | {p50:.0f} | {p95(result.overheads_ms):.0f} | "
            f"{result.elapsed_s:.1f} |"
        )


if __name__ == "__main__":
    asyncio.run(main())
