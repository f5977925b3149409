"""Running one admitted turn: the agent's answer streamed into a reply sink, stoppable.

The chat service decides whether and when a question is answered (quotas, bursts, the
conversation's queue); this runs the answer once its turn has come. It streams the agent's
events into the sink, watches for a stop (a /cancel from this or another process, a newer
question interrupting, shutdown, a reply nobody receives any more) while keeping the
conversation's lease alive, and ends the reply with a note saying why it stopped. It is
apart because the generation's life cycle is one concern, and the admission checks another.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from agent_graph.agent import Agent, TextDelta, ToolEvent, TurnSettings, Usage
from bot import metrics as bot_metrics
from bot.chat_settings import ChatSettings, SettingsService
from bot.failures import describe_failure
from bot.reply_journal import answer_again_after_restart, note_conversation
from bot.reply_sink import ReplySink
from bot.requests import Quoted
from bot.scope import Scope
from storage.conversation_lock import ConversationLocks, Lease
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


class TurnRunner:
    """Runs turns in this process, one per conversation at a time (the conversation's
    lease sees to that), and stops them on request."""

    def __init__(
        self,
        agent: Agent,
        settings: SettingsService,
        budget: TokenBudget,
        locks: ConversationLocks,
        context_tokens: int,
    ) -> None:
        self._agent = agent
        self._settings = settings
        self._budget = budget
        self._locks = locks
        self._context_tokens = context_tokens
        self._stops: dict[str, _Stop] = {}
        self.shutdown_note: str | None = None  # set once the process is stopping

    @property
    def in_flight(self) -> int:
        return len(self._stops)

    def stop(self, key: str, note: str) -> bool:
        """Stop the turn running in this process in conversation `key`; False when none."""
        local = self._stops.get(key)
        if local is not None:
            local.set(note)
        return local is not None

    def stop_all(self, note: str) -> None:
        """Stop every turn in this process, and any that starts from now on."""
        self.shutdown_note = note
        for stop in list(self._stops.values()):
            stop.set(note)

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
        budget = max(256, self._context_tokens - chat.answer_tokens - system_tokens)
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

    async def run(
        self, scope: Scope, message: str, quoted: Quoted | None, lease: Lease, sink: ReplySink
    ) -> None:
        key = scope.conversation_key
        stop = _Stop()
        self._stops[key] = stop
        if self.shutdown_note is not None:  # stopping began while this request was checked
            stop.set(self.shutdown_note)
        note_conversation(key)
        await sink.start()
        try:
            turn = self._turn_settings(await self._settings.resolve(scope), scope)
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
                await self._agent.record_partial_reply(key, "".join(shown))
                note = stop.note
                if note == self.shutdown_note and answer_again_after_restart():
                    note = RESTART_AGAIN_NOTE
                await sink.finish(note=note)
                bot_metrics.reply_outcome("cancelled")
        except Exception as exc:
            bot_metrics.reply_outcome("failed")
            await sink.fail(describe_failure(exc, f"a reply in {key}"))
        finally:
            self._stops.pop(key, None)

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
        stream = self._agent.stream_reply(scope.conversation_key, message, turn, context=context)
        async for event in stream:
            if isinstance(event, TextDelta):
                shown.append(event.text)
                await sink.append(event.text)
            elif isinstance(event, ToolEvent):
                bot_metrics.tool_event(event)
                await sink.tool_status(event.name, event.detail)
            elif isinstance(event, Usage):
                # Counted as each model call ends: a stopped answer still counts what it used.
                await self._budget.add(scope.user_key, scope.server_key, event.total)

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
