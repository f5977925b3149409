"""The platform-neutral chat service: one request in, one streamed reply out.

Every adapter (terminal, Discord, Telegram) hands requests here. The service owns what
they share: quotas and daily token budgets, merging one person's burst of lines into one
question, one generation in flight per conversation with the next questions queued
behind it (in order, across processes), cancellation, settings, and turning failures
into a message for the person who asked. A failure in one request never stops the
service from serving the others. The answer itself, once its turn has come, is run and
stopped by `turn_runner`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Self

import redis.asyncio as aioredis

from agent_graph.agent import Agent
from bot import metrics as bot_metrics
from bot.budgets import check_budget
from bot.bursts import BurstMerger
from bot.chat_settings import ChatSettings, SettingsService
from bot.config import SamplingDefaults
from bot.errors import (
    InvalidRequest,
    PermissionDenied,
    RateLimited,
    Restarting,
)
from bot.failures import describe_failure
from bot.reply_journal import answer_again_after_restart
from bot.reply_sink import ReplySink
from bot.requests import Quoted
from bot.scope import Role, Scope
from bot.turn_queue import TurnQueue
from bot.turn_runner import (
    CANCELLED_NOTE,
    INTERRUPTED_NOTE,
    RESTART_AGAIN_NOTE,
    SHUTDOWN_NOTE,
    TurnRunner,
)
from storage.conversation_lock import ConversationLocks
from storage.conversation_queue import ConversationQueue
from storage.quotas import RateLimiter
from storage.settings_store import RedisSettingsStore
from storage.token_budget import TokenBudget


@dataclass(frozen=True)
class ServiceLimits:
    max_message_chars: int = 16000
    user_requests_per_minute: int = 12
    scope_requests_per_minute: int = 120
    context_tokens: int = 4096
    max_waiting: int = 10  # questions queued per conversation
    max_waiting_per_person: int = 3
    # How long a queued question's place outlives its process: below the intake claims'
    # lease (`bot.coordination`), so a dead process's places are gone before its
    # questions are taken over and asked again.
    ticket_ttl_s: float = 6.0


class ChatService:
    def __init__(
        self,
        agent: Agent,
        settings: SettingsService,
        limiter: RateLimiter,
        locks: ConversationLocks,
        limits: ServiceLimits,
        queue: ConversationQueue,
        budget: TokenBudget,
        bursts: BurstMerger | None = None,
    ) -> None:
        self.agent = agent
        self.settings = settings
        self._limiter = limiter
        self._locks = locks
        self._limits = limits
        self._turns = TurnQueue(locks, queue)
        self.budget = budget
        self._bursts = bursts or BurstMerger()
        self._runner = TurnRunner(agent, settings, budget, locks, limits.context_tokens)
        # Users told to slow down, until when (monotonic): a burst gets one answer, not one
        # per message.
        self._slowed: dict[str, float] = {}

    @classmethod
    def on_redis(
        cls,
        agent: Agent,
        redis: aioredis.Redis,
        limits: ServiceLimits,
        defaults: ChatSettings | None = None,
        budget: TokenBudget | None = None,
    ) -> Self:
        """The service with its settings, quotas, conversation locks and queues in `redis`
        (`defaults`: the configured sampling defaults, else the built-in ones; `budget`:
        token counting on another clock, for tests)."""
        return cls(
            agent=agent,
            settings=SettingsService(
                RedisSettingsStore(redis),
                defaults or ChatSettings.from_defaults(SamplingDefaults()),
            ),
            limiter=RateLimiter(redis),
            locks=ConversationLocks(redis),
            limits=limits,
            queue=ConversationQueue(
                redis,
                max_waiting=limits.max_waiting,
                max_per_person=limits.max_waiting_per_person,
                ticket_ttl_s=limits.ticket_ttl_s,
            ),
            budget=budget or TokenBudget(redis),
        )

    @property
    def locks(self) -> ConversationLocks:
        return self._locks

    # -- chat ------------------------------------------------------------------------
    async def chat(
        self,
        scope: Scope,
        text: str,
        sink: ReplySink,
        quoted: Quoted | None = None,
        *,
        admitted: bool = False,
    ) -> None:
        """Answer `text` in `scope`'s conversation, streaming into `sink`.

        Problems the person can fix (empty message, quota, a full queue) go to
        `sink.fail`. A line merged into an earlier message of the same burst is answered
        there: its own `sink` is left untouched. `admitted`: the request was already
        counted against the quotas (`admit`).
        """
        bot_metrics.begin_turn(scope.platform, scope.conversation_key)
        try:
            self._check_open()
            message = self._check_message(text)
            if not admitted:
                await self._check_quotas(scope)
            chat = await self.settings.resolve(scope)
            merged = await self._bursts.collect(
                f"{scope.conversation_key}|{scope.user_key}", message, quoted, chat.burst_window_s
            )
            if merged is None:
                return
            self._check_open()
            message = self._check_message(merged.text)
            await check_budget(self.budget, scope, chat)
            lease = await self._turns.wait_turn(
                scope,
                sink,
                check_open=self._check_open,
                interrupt=self._interrupter(scope) if chat.busy_mode == "interrupt" else None,
            )
        except Exception as exc:
            await self._refuse(scope, exc, sink)
            return
        try:
            async with lease:
                await self._runner.run(scope, message, merged.quoted, lease, sink)
        except Exception as exc:  # releasing the lease failed: the reply itself is done
            describe_failure(exc, f"releasing {scope.conversation_key}")

    async def admit(self, scope: Scope, sink: ReplySink) -> bool:
        """Count a request that costs work before it reaches `chat` (a voice message to
        transcribe) against the quotas; False when refused (the person is told once)."""
        try:
            self._check_open()
            await self._check_quotas(scope)
        except Exception as exc:
            await self._refuse(scope, exc, sink)
            return False
        return True

    async def _refuse(self, scope: Scope, exc: Exception, sink: ReplySink) -> None:
        """Tell the person why the request was turned away (a burst hears "slow down" once)."""
        if isinstance(exc, Restarting) and answer_again_after_restart():
            await sink.finish(note=RESTART_AGAIN_NOTE)  # still queued when stopping began
            return
        if isinstance(exc, RateLimited):
            bot_metrics.reply_outcome("refused")
            if self._first_refusal(scope, exc.retry_after_s):
                await sink.fail(str(exc))
            return
        bot_metrics.count_refusal(exc)
        await sink.fail(describe_failure(exc, f"checks in {scope.conversation_key}"))

    def _check_open(self) -> None:
        if self._runner.shutdown_note is not None:
            raise Restarting("The bot is restarting; ask again in a minute.")

    async def cancel(self, scope: Scope) -> bool:
        """Stop the generation in flight in `scope`'s conversation; False when there is none.
        Questions queued behind it stay queued. In a shared chat only the person who
        asked, or an admin, may stop an answer."""
        key = scope.conversation_key
        if scope.shared and scope.role < Role.ADMIN:
            owner = await self._locks.owner(key)
            if owner is not None and owner != scope.user_key:
                raise PermissionDenied(
                    "only the person who asked, or an admin, can stop this answer"
                )
        local = self._runner.stop(key, CANCELLED_NOTE)
        remote = await self._locks.request_cancel(key)
        return local or remote

    def _interrupter(self, scope: Scope) -> Callable[[], Awaitable[None]]:
        """Stops the answer being written in `scope`'s conversation, in any process."""

        async def interrupt() -> None:
            await self._locks.request_cancel(scope.conversation_key)
            self._runner.stop(scope.conversation_key, INTERRUPTED_NOTE)

        return interrupt

    async def shutdown(self, note: str = SHUTDOWN_NOTE) -> None:
        """Stop every generation in flight in this process; each reply ends with `note`,
        so nothing half-written is left looking finished. Requests arriving afterwards are
        turned away."""
        self._runner.stop_all(note)

    @property
    def replies_in_flight(self) -> int:
        return self._runner.in_flight

    def _first_refusal(self, scope: Scope, retry_after_s: float) -> bool:
        """True when this user has not been told to slow down during this refusal window."""
        now = time.monotonic()
        if self._slowed.get(scope.user_key, 0.0) > now:
            return False
        self._slowed = {user: until for user, until in self._slowed.items() if until > now}
        self._slowed[scope.user_key] = now + max(retry_after_s, 1.0)
        return True

    async def reset(self, scope: Scope) -> None:
        await self.agent.reset(scope.conversation_key)

    def _check_message(self, text: str) -> str:
        message = text.strip()
        if not message:
            raise InvalidRequest("Your message is empty; type something to ask.")
        limit = self._limits.max_message_chars
        if len(message) > limit:
            raise InvalidRequest(
                f"Your message is {len(message)} characters; the limit is {limit}. "
                "Shorten it or send it in parts."
            )
        return message

    async def _check_quotas(self, scope: Scope) -> None:
        user = await self._limiter.hit(
            f"quota:{scope.user_key}", self._limits.user_requests_per_minute, 60.0
        )
        if not user.allowed:
            raise RateLimited(
                f"Slow down: you have sent {self._limits.user_requests_per_minute} messages "
                f"this minute. Try again in {user.retry_after_s:.0f} s.",
                user.retry_after_s,
            )
        server = await self._limiter.hit(
            f"quota:{scope.server_key}", self._limits.scope_requests_per_minute, 60.0
        )
        if not server.allowed:
            raise RateLimited(
                "Slow down: this community has used its share of answers this minute. "
                f"Try again in {server.retry_after_s:.0f} s.",
                server.retry_after_s,
            )
