"""One bot process serving Telegram against the fake Bot API, for tests that kill it.

`python -m tests.bot.platforms.telegram.replica_process BASE_URL FILE_URL REDIS_URL [ROLE_TTL_S]`
runs the real adapter and chat service (a scripted model answering "answer to: <the
question>"; with REPLICA_MODEL=pool, the inference pool's workers on that Redis) on that
Redis, coordinating with any other such process. It prints
"polling" or "standby" on stdout whenever that changes, and stops on SIGTERM. The
environment's REPLICA_TOKEN_DELAY_S sets how long each word takes (0.02 s).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import redis.asyncio as aioredis
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent
from bot.chat_service import ChatService, ServiceLimits
from bot.commands import CommandHandler
from bot.coordination import Coordination
from bot.platforms.base import BotCore
from bot.platforms.telegram.adapter import TelegramAdapter
from bot.platforms.telegram.config import TelegramSettings
from bot.reply_journal import ReplyJournal
from inference.chat_model import PoolChatModel
from inference.client import InferenceClient
from storage.redis_conn import open_redis
from storage.reply_journal import ReplyJournalStore
from tests.bot.platforms.telegram.fake_bot_api import TOKEN
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


async def main(base_url: str, file_url: str, redis_url: str, role_ttl_s: float = 3.0) -> None:
    client = await open_redis(redis_url)
    raw = aioredis.from_url(redis_url, decode_responses=False)
    inference = InferenceClient(client)
    model: BaseChatModel = (
        PoolChatModel(client=inference)
        if os.environ.get("REPLICA_MODEL") == "pool"
        else EchoModel(token_delay_s=float(os.environ.get("REPLICA_TOKEN_DELAY_S", "0.02")))
    )
    limits = ServiceLimits(user_requests_per_minute=1000, scope_requests_per_minute=10_000)
    chat = ChatService.on_redis(Agent(model, AsyncRedisSaver(client=raw)), client, limits)
    journal = ReplyJournal(
        ReplyJournalStore(client), jobs=inference, record_answer=chat.agent.record_partial_reply
    )
    core = BotCore(
        chat=chat,
        commands=CommandHandler(chat),
        coordination=Coordination(client, role_ttl_s=role_ttl_s, journal=journal),
    )
    settings = TelegramSettings.model_validate(
        {
            "token": TOKEN,
            "base_url": base_url,
            "base_file_url": file_url,
            "poll_timeout_s": 1,
            "shutdown_grace_s": 5.0,
            "operators": [],
            "webhook_url": None,
        }
    )
    adapter = TelegramAdapter(core, settings)
    stopping = asyncio.Event()
    shutting_down: list[asyncio.Task[None]] = []

    def stop() -> None:  # as `bot.platforms.runner` does: replies in flight end with a note
        stopping.set()
        shutting_down.append(asyncio.create_task(chat.shutdown()))

    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop)

    task = asyncio.create_task(adapter.run(stopping))
    shown = None
    while not task.done():
        state = "polling" if adapter.polling else "standby"
        if adapter.ready.is_set() and state != shown:
            print(state, flush=True)
            shown = state
        await asyncio.sleep(0.05)
    await task
    await asyncio.gather(*shutting_down)
    await inference.close()
    await client.aclose()
    await raw.aclose()


if __name__ == "__main__":
    logging.basicConfig(
        level=os.environ.get("BOT_LOG_LEVEL", "WARNING"),
        format=f"%(asctime)s {os.getpid()} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    ttl = float(sys.argv[4]) if len(sys.argv) > 4 else 3.0
    asyncio.run(main(*sys.argv[1:4], role_ttl_s=ttl))
