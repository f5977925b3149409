"""The one place that starts, wires and stops every part of the bot.

`App` is an async context manager: entering it starts the embedded servers that no URL
replaces, connects to Redis and PostgreSQL, starts an in-process inference worker when
no separate pool is configured, and builds the chat service. Leaving it stops all of
that in reverse order.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from types import TracebackType

from langchain_core.language_models import BaseChatModel
from langgraph_checkpoint_plainredis import AsyncRedisSaver

from agent_graph.agent import Agent
from agent_graph.tools.duckduckgo import DuckDuckGoBackend
from agent_graph.tools.searxng import SearxngBackend
from agent_graph.tools.web_search import SearchBackend
from bot.chat_service import ChatService, ServiceLimits
from bot.chat_settings import ChatSettings
from bot.commands import CommandHandler
from bot.config import Settings
from bot.coordination import Coordination
from bot.docs.service import DocsService
from bot.platforms.base import BotCore
from bot.reply_journal import ReplyJournal
from bot.services import database_url, redis_url
from bot.speech.replies import VoiceReplies
from bot.speech.service import SpeechToText
from bot.stats import BotStats
from inference.chat_model import PoolChatModel
from inference.client import InferenceClient
from inference.embedded import EmbeddedWorker
from inference.model_files import read_chat_template, resolve_model_path
from inference.model_server import ModelServer, ServerConfig
from inference.server_chat_model import ServerChatModel
from storage.datadir import ensure_writable_dir
from storage.documents import MiniLMEmbedder, PgDocumentStore, RecentEmbeddings
from storage.documents.embedder import LazyEmbedder
from storage.postgres import open_pool
from storage.redis_conn import open_redis
from storage.reply_journal import ReplyJournalStore

log = logging.getLogger(__name__)


class App:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self.redis_url = ""
        self.database_url = ""

    async def __aenter__(self) -> App:
        try:
            await self._start()
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._stack.aclose()

    async def _start(self) -> None:
        settings = self.settings
        # Check the model before starting anything slow, so a bad path fails at once.
        pool = settings.llm_base_url is None
        model_path = (
            resolve_model_path(settings.model_path) if pool and settings.embedded_worker else None
        )
        read_chat_template(settings.chat_template)  # a bad file fails here, at once
        data_dir = ensure_writable_dir(settings.data_dir)
        # Both servers start at once; wait for both before failing so that one which did
        # start is registered for shutdown.
        results = await asyncio.gather(
            redis_url(settings, data_dir, self._stack),
            database_url(settings, data_dir, self._stack),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result
        self.redis_url, self.database_url = str(results[0]), str(results[1])
        self.redis = await open_redis(self.redis_url)
        self._stack.push_async_callback(self.redis.aclose)
        self.pg_pool = await open_pool(self.database_url)
        self._stack.push_async_callback(self.pg_pool.close)
        if model_path is not None:
            worker = EmbeddedWorker(
                self.redis_url,
                model_path,
                slots=settings.worker_slots,
                ctx_per_slot=settings.context_size,
                model_name=settings.model_name,
                host_cache_mb=settings.host_cache_mb,
                chat_template=settings.chat_template,
                tool_format=settings.tool_format,
            )
            await self._stack.enter_async_context(worker)
        # Shared by the store and the tool router, which embed the same message in turn.
        embedder = RecentEmbeddings(
            LazyEmbedder(MiniLMEmbedder, MiniLMEmbedder.model_name, MiniLMEmbedder.dimensions)
        )
        self.documents = PgDocumentStore(self.pg_pool, embedder)
        # The checkpointer stores binary blobs: it needs a client that does not decode (and,
        # as every client here, waits for a free connection rather than failing at 100).
        raw_redis = await open_redis(self.redis_url, decode_responses=False)
        self._stack.push_async_callback(raw_redis.aclose)
        checkpointer = AsyncRedisSaver(client=raw_redis, ttl=settings.conversation_ttl_s)
        self.inference = InferenceClient(self.redis)
        self._stack.push_async_callback(self.inference.close)
        self.model_server = await self._model_server(settings)
        model: BaseChatModel = (
            PoolChatModel(client=self.inference, model=settings.model_name)
            if self.model_server is None
            else ServerChatModel(server=self.model_server)
        )
        search: SearchBackend | None = None
        if settings.web_search:
            search = (
                SearxngBackend(settings.searxng_url)
                if settings.searxng_url
                else DuckDuckGoBackend()
            )
        self.chat = ChatService.on_redis(
            Agent(
                model,
                checkpointer,
                search_backend=search,
                document_search=self.documents,
                embedder=embedder,
                detect_arithmetic=settings.arithmetic_detection,
            ),
            self.redis,
            ServiceLimits(
                max_message_chars=settings.max_message_chars,
                user_requests_per_minute=settings.user_requests_per_minute,
                scope_requests_per_minute=settings.scope_requests_per_minute,
                context_tokens=settings.context_size,
            ),
            ChatSettings.from_defaults(settings.sampling),
        )
        docs = DocsService(
            self.documents,
            model,
            settings.sampling.generation(),
            max_upload_bytes=settings.max_upload_mb * 1024 * 1024,
            context_tokens=settings.context_size,
        )
        # The router's examples are embedded while the rest starts, not on the first message.
        warm_up = asyncio.create_task(self.chat.agent.router.prepare())
        self._stack.callback(warm_up.cancel)
        # The Whisper model loads with the first voice message, not here.
        self.speech = SpeechToText(settings.speech, data_dir)
        self._stack.callback(self.speech.close)
        voice = VoiceReplies(self.chat, self.speech)
        self.commands = CommandHandler(
            self.chat,
            docs=docs,
            stats=BotStats(self.inference, self.chat.locks, self.model_server),
            voice=voice,
        )
        self.core = BotCore(
            chat=self.chat,
            commands=self.commands,
            docs=docs,
            voice=voice,
            coordination=Coordination(
                self.redis,
                journal=ReplyJournal(
                    ReplyJournalStore(self.redis),
                    # A cut reply is finished from the pool's output; a model server's
                    # answers cannot be followed again, so those are answered again.
                    jobs=self.inference if self.model_server is None else None,
                    record_answer=self.chat.agent.record_partial_reply,
                ),
            ),
        )

    async def _model_server(self, settings: Settings) -> ModelServer | None:
        """The OpenAI-compatible server that answers instead of the pool, when one is set;
        probed now so the log says what it is and what it cannot do."""
        if settings.llm_base_url is None:
            return None
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else ""
        server = ModelServer(
            ServerConfig(
                settings.llm_base_url, key, settings.llm_model, timeout_s=settings.llm_timeout_s
            )
        )
        self._stack.push_async_callback(server.close)
        await server.probe()
        log.info("generation: %s", server.describe())
        return server
