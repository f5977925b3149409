"""The platform-neutral chat service: one request in, one streamed reply out.

Every adapter (terminal, Discord, Telegram) hands requests here. The service owns what
they share: quotas, one generation in flight per conversation, cancellation, settings,
and turning failures into a message for the person who asked. A failure in one request
never stops the service from serving the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Self

import redis.asyncio as aioredis

from agent_graph.agent import Agent, TextDelta, ToolEvent, TurnSettings
from bot.chat_settings import ChatSettings, SettingsService
from bot.config import SamplingDefaults
from bot.errors import ConversationBusy, GenerationFailed, InvalidRequest, RateLimited
from bot.failures import describe_failure
from bot.reply_sink import ReplySink
from bot.scope import Scope
from storage.conversation_lock import ConversationLocks, Lease
from storage.quotas import RateLimiter
from storage.settings_store import RedisSettingsStore

# How often a running generation checks for a /cancel from another process and
# refreshes its conversation lease.
_WATCH_INTERVAL_S = 0.25
CANCELLED_NOTE = "(stopped by /cancel)"
SHUTDOWN_NOTE = "(stopped: the bot is restarting; ask again in a minute)"


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


class ChatService:
    def __init__(
        self,
        agent: Agent,
        settings: SettingsService,
        limiter: RateLimiter,
        locks: ConversationLocks,
        limits: ServiceLimits,
    ) -> None:
        self.agent = agent
        self.settings = settings
        self._limiter = limiter
        self._locks = locks
        self._limits = limits
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
    ) -> Self:
        """The service with its settings, quotas and conversation locks in `redis`
        (`defaults`: the configured sampling defaults, else the built-in ones)."""
        return cls(
            agent=agent,
            settings=SettingsService(
                RedisSettingsStore(redis),
                defaults or ChatSettings.from_defaults(SamplingDefaults()),
            ),
            limiter=RateLimiter(redis),
            locks=ConversationLocks(redis),
            limits=limits,
        )

    @property
    def locks(self) -> ConversationLocks:
        return self._locks

    # -- chat ------------------------------------------------------------------------
    async def chat(self, scope: Scope, text: str, sink: ReplySink) -> None:
        """Answer `text` in `scope`'s conversation, streaming into `sink`.

        Problems the person can fix (empty message, quota, busy) go to `sink.fail`.
        """
        try:
            if self._shutdown_note is not None:
                raise GenerationFailed("The bot is restarting; ask again in a minute.")
            message = self._check_message(text)
            await self._check_quotas(scope)
            lease = await self._locks.acquire(scope.conversation_key)
            if lease is None:
                raise ConversationBusy(
                    "I'm still answering the last message here; wait for it, or send /cancel"
                )
        except RateLimited as exc:
            if self._first_refusal(scope, exc.retry_after_s):
                await sink.fail(str(exc))
            return
        except Exception as exc:
            await sink.fail(describe_failure(exc, f"checks in {scope.conversation_key}"))
            return
        try:
            async with lease:
                await self._run_turn(scope, message, lease, sink)
        except Exception as exc:  # releasing the lease failed: the reply itself is done
            describe_failure(exc, f"releasing {scope.conversation_key}")

    async def cancel(self, scope: Scope) -> bool:
        """Stop the generation in flight in `scope`'s conversation; False when there is none."""
        local = self._local_stops.get(scope.conversation_key)
        if local is not None:
            local.set(CANCELLED_NOTE)
        remote = await self._locks.request_cancel(scope.conversation_key)
        return local is not None or remote

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
        # The history gets what the context holds after the answer and the system prompt.
        system_tokens = len(chat.system_prompt) // 3 + 16
        budget = max(256, self._limits.context_tokens - chat.max_tokens - system_tokens)
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

    async def _run_turn(self, scope: Scope, message: str, lease: Lease, sink: ReplySink) -> None:
        key = scope.conversation_key
        stop = _Stop()
        self._local_stops[key] = stop
        if self._shutdown_note is not None:  # stopping began while this request was checked
            stop.set(self._shutdown_note)
        await sink.start()
        try:
            turn = self._turn_settings(await self.settings.resolve(scope), scope)
            shown: list[str] = []  # the text the person has seen so far
            generation = asyncio.create_task(self._pump(key, message, turn, sink, shown))
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
            else:
                # Keep what was shown, so the history matches what people read.
                await self.agent.record_partial_reply(key, "".join(shown))
                await sink.finish(note=stop.note)
        except Exception as exc:
            await sink.fail(describe_failure(exc, f"a reply in {key}"))
        finally:
            self._local_stops.pop(key, None)

    async def _pump(
        self, key: str, message: str, turn: TurnSettings, sink: ReplySink, shown: list[str]
    ) -> None:
        async for event in self.agent.stream_reply(key, message, turn):
            if isinstance(event, TextDelta):
                shown.append(event.text)
                await sink.append(event.text)
            elif isinstance(event, ToolEvent):
                await sink.tool_status(event.name, event.detail)

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
            if ticks % 20 == 0:
                await lease.refresh()
