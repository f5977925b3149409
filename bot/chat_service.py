"""The platform-neutral chat service: one request in, one streamed reply out.

Every adapter (terminal, Discord, Telegram) hands requests here. The service owns what
they share: quotas and daily token budgets, merging one person's burst of lines into one
question, one generation in flight per conversation with the next questions queued
behind it (in order, across processes), cancellation, settings, and turning failures
into a message for the person who asked. A failure in one request never stops the
service from serving the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Self

import redis.asyncio as aioredis

from agent_graph.agent import Agent, TextDelta, ToolEvent, TurnSettings, Usage
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
from bot.reply_journal import answer_again_after_restart, note_conversation
from bot.reply_sink import ReplySink
from bot.requests import Quoted
from bot.scope import Role, Scope
from bot.turn_queue import TurnQueue
from storage.conversation_lock import ConversationLocks, Lease
from storage.conversation_queue import ConversationQueue
from storage.quotas import RateLimiter
from storage.settings_store import RedisSettingsStore
from storage.token_budget import TokenBudget

# How often a running generation checks for a /cancel from another process and
# refreshes its conversation lease.
_WATCH_INTERVAL_S = 0.25
CANCELLED_NOTE = "(stopped by /cancel)"
INTERRUPTED_NOTE = "(stopped: a newer question came in)"
SHUTDOWN_NOTE = "(stopped: the bot is restarting; ask again in a minute)"
# Where another process, or this one after the restart, will answer the question again.
RESTART_AGAIN_NOTE = "(stopped: the bot is restarting; this is answered again once it is back)"


@dataclass
class _Stop:
    """Set to stop a turn in flight; `note` is shown after the partial answer."""

    event: asyncio.Event = field(default_factory=asyncio.Event)
    note: str = CANCELLED_NOTE

    def set(self, note: str) -> None:
        if not self.event.is_set():
            self.note = note
        self.event.set()


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
        self._local_stops: dict[str, _Stop] = {}
        self._shutdown_note: str | None = None  # set once the process is stopping
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
                await self._run_turn(scope, message, merged.quoted, lease, sink)
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
        if self._shutdown_note is not None:
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
        local = self._stop_local(key, CANCELLED_NOTE)
        remote = await self._locks.request_cancel(key)
        return local or remote

    def _interrupter(self, scope: Scope) -> Callable[[], Awaitable[None]]:
        """Stops the answer being written in `scope`'s conversation, in any process."""

        async def interrupt() -> None:
            await self._locks.request_cancel(scope.conversation_key)
            self._stop_local(scope.conversation_key, INTERRUPTED_NOTE)

        return interrupt

    def _stop_local(self, key: str, note: str) -> bool:
        local = self._local_stops.get(key)
        if local is not None:
            local.set(note)
        return local is not None

    async def shutdown(self, note: str = SHUTDOWN_NOTE) -> None:
        """Stop every generation in flight in this process; each reply ends with `note`,
        so nothing half-written is left looking finished. Requests arriving afterwards are
        turned away."""
        self._shutdown_note = note
        for stop in list(self._local_stops.values()):
            stop.set(note)

    @property
    def replies_in_flight(self) -> int:
        return len(self._local_stops)

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

    def _turn_settings(self, chat: ChatSettings, scope: Scope) -> TurnSettings:
        sampling = {
            "temperature": chat.temperature,
            "top_p": chat.top_p,
            "top_k": chat.top_k,
            "min_p": chat.min_p,
            "repeat_penalty": chat.repeat_penalty,
            "max_tokens": chat.max_tokens,
            "seed": chat.seed,
        }
        sampling["max_tokens"] = chat.answer_tokens
        # The history gets what the context holds after the answer and the system prompt.
        system_tokens = len(chat.system_prompt) // 3 + 16
        budget = max(256, self._limits.context_tokens - chat.answer_tokens - system_tokens)
        return TurnSettings(
            chat.system_prompt,
            sampling,
            history_budget=budget,
            tools=chat.tools,
            # Documents belong to a server (Discord guild, Telegram chat): search only its own.
            document_scope=scope.server_key,
            tool_routing=chat.tool_routing,
            document_answers=chat.document_answers,
        )

    async def _run_turn(
        self, scope: Scope, message: str, quoted: Quoted | None, lease: Lease, sink: ReplySink
    ) -> None:
        key = scope.conversation_key
        stop = _Stop()
        self._local_stops[key] = stop
        if self._shutdown_note is not None:  # stopping began while this request was checked
            stop.set(self._shutdown_note)
        note_conversation(key)
        await sink.start()
        try:
            turn = self._turn_settings(await self.settings.resolve(scope), scope)
            shown: list[str] = []  # the text the person has seen so far
            generation = asyncio.create_task(self._pump(scope, message, quoted, turn, sink, shown))
            # The watcher also ends by itself once `finished` is set: redis-py can swallow
            # a cancellation that lands while a command is awaited, and a watcher that
            # missed its cancel would keep the turn (and its lease) alive for ever.
            finished = asyncio.Event()
            watcher = asyncio.create_task(self._watch(key, lease, stop.event, finished, sink))
            try:
                await asyncio.wait({generation, watcher}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                finished.set()
                for task in (generation, watcher):
                    if not task.done():
                        task.cancel()
                for task in (generation, watcher):
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            if watcher.done() and not watcher.cancelled() and watcher.exception():
                raise watcher.exception()  # type: ignore[misc]
            if not generation.cancelled():
                generation.result()  # re-raise a failure of the generation
                await sink.finish()
                bot_metrics.reply_outcome("done")
            else:
                # Keep what was shown, so the history matches what people read.
                await self.agent.record_partial_reply(key, "".join(shown))
                note = stop.note
                if note == self._shutdown_note and answer_again_after_restart():
                    note = RESTART_AGAIN_NOTE
                await sink.finish(note=note)
                bot_metrics.reply_outcome("cancelled")
        except Exception as exc:
            bot_metrics.reply_outcome("failed")
            await sink.fail(describe_failure(exc, f"a reply in {key}"))
        finally:
            self._local_stops.pop(key, None)

    async def _pump(
        self,
        scope: Scope,
        message: str,
        quoted: Quoted | None,
        turn: TurnSettings,
        sink: ReplySink,
        shown: list[str],
    ) -> None:
        context = None if quoted is None else quoted.as_context()
        stream = self.agent.stream_reply(scope.conversation_key, message, turn, context=context)
        async for event in stream:
            if isinstance(event, TextDelta):
                shown.append(event.text)
                await sink.append(event.text)
            elif isinstance(event, ToolEvent):
                bot_metrics.tool_event(event)
                await sink.tool_status(event.name, event.detail)
            elif isinstance(event, Usage):
                # Counted as each model call ends: a stopped answer still counts what it used.
                await self.budget.add(scope.user_key, scope.server_key, event.total)

    async def _watch(
        self,
        key: str,
        lease: Lease,
        cancelled: asyncio.Event,
        finished: asyncio.Event,
        sink: ReplySink,
    ) -> None:
        """Return when this turn should stop: a local or a cross-process /cancel, a reply
        nobody can receive any more, or once the turn is `finished`."""
        ticks = 0
        while not finished.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(cancelled.wait(), timeout=_WATCH_INTERVAL_S)
                return
            if sink.abandoned:
                return
            if await self._locks.cancel_requested(key):
                return
            ticks += 1
            if ticks % 8 == 0:  # every 2 s: a lease lasts 12 s
                await lease.refresh()
