"""One bot process serving Telegram by webhook against the fake Bot API, for tests that
run several and kill one.

`python -m tests.bot.platforms.telegram.webhook_process BASE_URL FILE_URL REDIS_URL PORT`
runs the real adapter and chat service (a model answering "answer to: <the question>")
on that Redis, listening for webhook posts on 127.0.0.1:PORT at the path of
$WEBHOOK_URL, with $WEBHOOK_SECRET. It prints "ready" once it takes posts, and stops on
SIGTERM. $REPLICA_TOKEN_DELAY_S sets how long each word takes (0.02 s); leases (claims
and lanes) last 3 s, so a killed process's work is taken over quickly.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys

import redis.asyncio as aioredis
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent
from bot.chat_service import ChatService, ServiceLimits
from bot.chat_settings import ChatSettings
from bot.commands import CommandHandler
from bot.config import SamplingDefaults
from bot.coordination import Coordination
from bot.platforms.base import BotCore
from bot.platforms.telegram.adapter import TelegramAdapter
from bot.platforms.telegram.config import TelegramSettings
from storage.redis_conn import open_redis
from tests.bot.platforms.telegram.fake_bot_api import TOKEN
from tests.bot.platforms.telegram.replica_process import EchoModel

LEASE_S = 3.0


async def main(base_url: str, file_url: str, redis_url: str, port: int) -> None:
    client = await open_redis(redis_url)
    raw = aioredis.from_url(redis_url, decode_responses=False)
    model = EchoModel(token_delay_s=float(os.environ.get("REPLICA_TOKEN_DELAY_S", "0.02")))
    limits = ServiceLimits(user_requests_per_minute=1000, scope_requests_per_minute=10_000)
    # Each question on its own: the tests name every answer by its question.
    defaults = ChatSettings.from_defaults(SamplingDefaults(burst_window_s=0))
    agent = Agent(model, AsyncRedisSaver(client=raw))
    chat = ChatService.on_redis(agent, client, limits, defaults)
    core = BotCore(
        chat=chat,
        commands=CommandHandler(chat),
        coordination=Coordination(client, claim_lease_s=LEASE_S, role_ttl_s=LEASE_S),
    )
    settings = TelegramSettings.model_validate(
        {
            "token": TOKEN,
            "base_url": base_url,
            "base_file_url": file_url,
            "shutdown_grace_s": 5.0,
            "operators": [],
            "webhook_url": os.environ["WEBHOOK_URL"],
            "webhook_listen": "127.0.0.1",
            "webhook_port": port,
            "webhook_secret": os.environ.get("WEBHOOK_SECRET"),
        }
    )
    adapter = TelegramAdapter(core, settings)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    task = asyncio.create_task(adapter.run(stopping))
    ready = asyncio.ensure_future(adapter.ready.wait())
    await asyncio.wait({ready, task}, return_when=asyncio.FIRST_COMPLETED)
    if adapter.ready.is_set():
        print("ready", flush=True)
    await task
    await client.aclose()
    await raw.aclose()


if __name__ == "__main__":
    logging.basicConfig(
        level=os.environ.get("BOT_LOG_LEVEL", "WARNING"),
        format=f"%(asctime)s {os.getpid()} %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    asyncio.run(main(*sys.argv[1:4], port=int(sys.argv[4])))
