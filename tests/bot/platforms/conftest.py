"""The bot's core for platform tests: a scripted model behind the real agent, real Redis
memory, quotas, locks and settings, and real PostgreSQL documents."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
import redis.asyncio as aioredis
from langgraph_checkpoint_plainredis import AsyncRedisSaver
from psycopg_pool import AsyncConnectionPool

from agent_graph.agent import Agent
from bot.chat_service import ChatService, ServiceLimits
from bot.chat_settings import ChatSettings
from bot.commands import CommandHandler
from bot.config import SamplingDefaults
from bot.coordination import Coordination
from bot.docs.service import DocsService
from bot.platforms.base import BotCore
from bot.speech.replies import VoiceReplies
from bot.speech.service import SpeechToText
from storage.documents import MiniLMEmbedder, PgDocumentStore
from storage.token_budget import TokenBudget
from tests.conftest import LLAMA_SERVER_KEY
from tests.fakes import ScriptedChatModel
from tests.inference.conftest import Pool


@pytest.fixture
def model() -> ScriptedChatModel:
    """The scripted model behind the agent: `model.enqueue("answer")` sets its next reply."""
    return ScriptedChatModel()


@pytest.fixture
def limits() -> ServiceLimits:
    return ServiceLimits(max_message_chars=16000, user_requests_per_minute=12)


@pytest.fixture
def chat_defaults() -> ChatSettings:
    """The configured defaults; bursts off, so each message is answered as it comes (the
    burst tests turn merging on)."""
    return ChatSettings.from_defaults(SamplingDefaults(burst_window_s=0))


@pytest.fixture
def budget_clock() -> Callable[[], float]:
    """The clock daily token budgets count days on (tests move it to the next day)."""
    return time.time


@pytest.fixture
async def core(
    redis_client: aioredis.Redis,
    redis_url: str,
    pg_pool: AsyncConnectionPool,
    embedder: MiniLMEmbedder,
    model: ScriptedChatModel,
    limits: ServiceLimits,
    chat_defaults: ChatSettings,
    budget_clock: Callable[[], float],
    speech: SpeechToText,
) -> AsyncIterator[BotCore]:
    raw = aioredis.from_url(redis_url, decode_responses=False)
    chat = ChatService.on_redis(
        Agent(model, AsyncRedisSaver(client=raw)),
        redis_client,
        limits,
        chat_defaults,
        budget=TokenBudget(redis_client, budget_clock),
    )
    docs = DocsService(PgDocumentStore(pg_pool, embedder), model)
    # The real Whisper model, shared by the session: loaded by the first voice message.
    voice = VoiceReplies(chat, speech)
    commands = CommandHandler(chat, docs=docs, voice=voice)
    yield BotCore(chat=chat, commands=commands, docs=docs, voice=voice)
    await raw.aclose()


@pytest.fixture(params=["pool", "server"])
def backend_settings(request: pytest.FixtureRequest) -> dict[str, object]:
    """The app's settings for each generation backend in turn: the worker pool, and an
    OpenAI-compatible server (a real llama-server) in its place."""
    if request.param == "pool":
        return {}
    server = request.getfixturevalue("llama_server")
    return {"llm_base_url": server.url, "llm_api_key": LLAMA_SERVER_KEY}


@pytest.fixture
def coordinated_core(core: BotCore, redis_client: aioredis.Redis) -> BotCore:
    """The same core, with the shared state several bot processes coordinate through."""
    return dataclasses.replace(core, coordination=Coordination(redis_client))


@pytest.fixture
def pool(redis_client: aioredis.Redis, redis_url: str) -> Iterator[Pool]:
    """Inference workers in this test process, apart from the bot processes it starts
    (`tests.bot.platforms.processes`): they go on writing when a bot process is killed."""
    started = Pool(redis_url)
    yield started
    started.stop_all()
