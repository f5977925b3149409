"""One bot process serving Telegram or Discord against the tests' fake server, for tests
(and `benchmarks/replicas.py`) that kill it.

    python -m tests.bot.platforms.replica_process telegram BASE_URL FILE_URL REDIS_URL [ROLE_TTL_S]
    python -m tests.bot.platforms.replica_process webhook BASE_URL FILE_URL REDIS_URL PORT
    python -m tests.bot.platforms.replica_process discord API_URL REDIS_URL SHARD_IDS SHARD_COUNT

runs the real adapter and chat service (a scripted model answering "answer to: <the
question>"; with REPLICA_MODEL=pool, the inference pool's workers on that Redis) on that
Redis, coordinating with any other such process. A polling Telegram process prints
"polling" or "standby" on stdout whenever that changes; a webhook one (posts taken on
127.0.0.1:PORT at the path of $WEBHOOK_URL, with $WEBHOOK_SECRET; each question on its
own, leases of 3 s) and a Discord one print "ready" once serving. Each stops on SIGTERM
as `python -m bot serve` does (replies in flight end with a note). The environment's
REPLICA_TOKEN_DELAY_S sets how long each word takes (0.02 s).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent
from bot.chat_service import ChatService, ServiceLimits
from bot.chat_settings import ChatSettings
from bot.commands import CommandHandler
from bot.config import SamplingDefaults
from bot.coordination import Coordination
from bot.platforms.base import BotCore, PlatformAdapter
from bot.platforms.discord.adapter import DiscordAdapter
from bot.platforms.discord.config import DiscordSettings
from bot.platforms.telegram.adapter import TelegramAdapter
from bot.platforms.telegram.config import TelegramSettings
from bot.reply_journal import ReplyJournal
from inference.chat_model import PoolChatModel
from inference.client import InferenceClient
from storage.redis_conn import open_redis
from storage.reply_journal import ReplyJournalStore
from tests.bot.platforms.discord.fake_world import TOKEN as DISCORD_TOKEN
from tests.bot.platforms.telegram.fake_bot_api import TOKEN as TELEGRAM_TOKEN
from tests.fakes import ScriptedChatModel


class EchoModel(ScriptedChatModel):
    """Answers every question with "answer to: QUESTION", word by word."""

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        self.enqueue(f"answer to: {messages[-1].content}")
        async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
            yield chunk


async def core_on(
    redis_url: str,
    stack: AsyncExitStack,
    *,
    role_ttl_s: float = 3.0,
    claim_lease_s: float = 10.0,
    defaults: ChatSettings | None = None,
) -> BotCore:
    """The bot's core on that Redis, as `bot.app` wires it, with the model of the
    environment (REPLICA_MODEL, REPLICA_TOKEN_DELAY_S)."""
    client = await open_redis(redis_url)
    stack.push_async_callback(client.aclose)
    raw = await open_redis(redis_url, decode_responses=False)
    stack.push_async_callback(raw.aclose)
    inference = InferenceClient(client)
    stack.push_async_callback(inference.close)
    model: BaseChatModel = (
        PoolChatModel(client=inference)
        if os.environ.get("REPLICA_MODEL") == "pool"
        else EchoModel(token_delay_s=float(os.environ.get("REPLICA_TOKEN_DELAY_S", "0.02")))
    )
    limits = ServiceLimits(
        user_requests_per_minute=1000,
        scope_requests_per_minute=10_000,
        ticket_ttl_s=min(6.0, claim_lease_s / 2),
    )
    agent = Agent(model, AsyncRedisSaver(client=raw))
    chat = ChatService.on_redis(agent, client, limits, defaults)
    journal = ReplyJournal(
        ReplyJournalStore(client), jobs=inference, record_answer=chat.agent.record_partial_reply
    )
    return BotCore(
        chat=chat,
        commands=CommandHandler(chat),
        coordination=Coordination(
            client, claim_lease_s=claim_lease_s, role_ttl_s=role_ttl_s, journal=journal
        ),
    )


def telegram(core: BotCore, base_url: str, file_url: str, **webhook: object) -> TelegramAdapter:
    settings = TelegramSettings.model_validate(
        {
            "token": TELEGRAM_TOKEN,
            "base_url": base_url,
            "base_file_url": file_url,
            "poll_timeout_s": 1,
            "shutdown_grace_s": 5.0,
            "operators": [],
            "webhook_url": None,
            **webhook,
        }
    )
    return TelegramAdapter(core, settings)


def discord(core: BotCore, api_url: str, shard_ids: str, shard_count: str) -> DiscordAdapter:
    settings = DiscordSettings.model_validate(
        {
            "token": DISCORD_TOKEN,
            "api_url": api_url,
            "shard_ids": shard_ids,
            "shard_count": int(shard_count),
            "shutdown_grace_s": 5.0,
        }
    )
    return DiscordAdapter(core, settings)


def ready_state(adapter: TelegramAdapter | DiscordAdapter) -> str | None:
    return "ready" if adapter.ready.is_set() else None


def telegram_state(adapter: TelegramAdapter) -> str | None:
    if not adapter.ready.is_set():
        return None
    return "polling" if adapter.polling else "standby"


async def serve(adapter: PlatformAdapter, core: BotCore, state: Callable[[], str | None]) -> None:
    stopping = asyncio.Event()
    shutting_down: list[asyncio.Task[None]] = []

    def stop() -> None:  # as `bot.platforms.runner` does: replies in flight end with a note
        stopping.set()
        shutting_down.append(asyncio.create_task(core.chat.shutdown()))

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)
    task = asyncio.create_task(adapter.run(stopping))
    shown = None
    while not task.done():
        now = state()
        if now is not None and now != shown:
            print(now, flush=True)
            shown = now
        await asyncio.sleep(0.05)
    await task
    await asyncio.gather(*shutting_down)


async def main(platform: str, args: list[str]) -> None:
    async with AsyncExitStack() as stack:
        if platform == "telegram":
            base_url, file_url, redis_url, *rest = args
            core = await core_on(redis_url, stack, role_ttl_s=float(rest[0]) if rest else 3.0)
            polling = telegram(core, base_url, file_url)
            await serve(polling, core, lambda: telegram_state(polling))
        elif platform == "webhook":
            base_url, file_url, redis_url, port = args
            # Each question on its own: the tests name every answer by its question.
            defaults = ChatSettings.from_defaults(SamplingDefaults(burst_window_s=0))
            core = await core_on(
                redis_url, stack, role_ttl_s=3.0, claim_lease_s=3.0, defaults=defaults
            )
            hooked = telegram(
                core,
                base_url,
                file_url,
                webhook_url=os.environ["WEBHOOK_URL"],
                webhook_listen="127.0.0.1",
                webhook_port=int(port),
                webhook_secret=os.environ.get("WEBHOOK_SECRET"),
            )
            await serve(hooked, core, lambda: ready_state(hooked))
        else:
            api_url, redis_url, shard_ids, shard_count = args
            core = await core_on(redis_url, stack)
            gateway = discord(core, api_url, shard_ids, shard_count)
            await serve(gateway, core, lambda: ready_state(gateway))


if __name__ == "__main__":
    logging.basicConfig(
        level=os.environ.get("BOT_LOG_LEVEL", "WARNING"),
        format=f"%(asctime)s {os.getpid()} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main(sys.argv[1], sys.argv[2:]))
