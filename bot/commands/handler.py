"""Running a `CommandCall`: the role check, the arguments, and each command's work.

Every command of the registry has exactly one handler here. A handler returns the text
to show, or None when it answered through the sink itself (a streamed answer, an upload
with progress). Failures become one clear line in the sink: nothing a person types or
a platform forges stops the bot serving others.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bot.budgets import duration_text
from bot.chat_service import ChatService
from bot.chat_settings import SETTING_SPECS
from bot.commands.registry import REGISTRY, CommandRegistry
from bot.docs.service import DocsService
from bot.docs.uploads import add_upload
from bot.errors import InvalidRequest
from bot.failures import describe_failure
from bot.reply_sink import ReplySink, send_text
from bot.requests import CommandCall, Upload
from bot.scope import Role, Scope, SettingLevel
from bot.speech.replies import VoiceReplies
from bot.stats import BotStats

Args = dict[str, Any]
Handler = Callable[[Scope, Args, ReplySink], Awaitable[str | None]]


class CommandHandler:
    def __init__(
        self,
        service: ChatService,
        docs: DocsService | None = None,
        stats: BotStats | None = None,
        registry: CommandRegistry = REGISTRY,
        voice: VoiceReplies | None = None,
    ) -> None:
        self._service = service
        self._docs = docs
        self._stats = stats
        self._voice = voice or VoiceReplies(service, None)
        self.registry = registry
        self._handlers: dict[str, Handler] = {
            "help": self._help,
            "ask": self._ask,
            "cancel": self._cancel,
            "reset": self._reset,
            "usage": self._usage,
            "settings show": self._settings_show,
            "settings set": self._settings_set,
            "settings reset": self._settings_reset,
            "transcribe": self._transcribe,
            "docs list": self._docs_list,
            "docs ask": self._docs_ask,
            "docs summarize": self._docs_summarize,
            "docs add": self._docs_add,
            "docs remove": self._docs_remove,
            "stats": self._show_stats,
        }
        missing = {spec.name for spec in registry.specs} - set(self._handlers)
        if missing:
            raise ValueError(f"commands without a handler: {', '.join(sorted(missing))}")

    def add_handler(self, name: str, handler: Handler) -> None:
        """Run `handler` for the registry's command `name` (declared there first)."""
        self.registry.get(name)
        self._handlers[name] = handler

    async def handle(self, scope: Scope, text: str, sink: ReplySink) -> None:
        """A command typed as text ("/settings set top_k 20"): parsed once, then run."""
        head, _, rest = text.strip().partition(" ")
        await self.handle_typed(scope, head, rest, sink)

    async def handle_typed(self, scope: Scope, command: str, rest: str, sink: ReplySink) -> None:
        """A command whose name the platform found (`command`), with the text after it."""
        try:
            call = self.registry.call(scope, command, rest)
        except Exception as exc:
            await sink.fail(describe_failure(exc, f"command {command[:40]!r}"))
            return
        await self.run(call, sink)

    async def run(self, call: CommandCall, sink: ReplySink) -> None:
        try:
            spec = self.registry.get(call.name)
            spec.check_role(call.scope)
            args = spec.bind(call.args)
            reply = await self._handlers[spec.name](call.scope, args, sink)
        except Exception as exc:
            await sink.fail(describe_failure(exc, f"command /{call.name[:40]}"))
            return
        if reply is not None:
            await send_text(sink, reply)

    # -- conversation ----------------------------------------------------------------
    async def _help(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        return self.registry.help_text(scope, SETTING_SPECS)

    async def _ask(self, scope: Scope, args: Args, sink: ReplySink) -> None:
        await self._service.chat(scope, args["question"], sink)
        return None

    async def _cancel(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        stopped = await self._service.cancel(scope)
        return "Stopping the answer." if stopped else "Nothing to cancel."

    async def _reset(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        await self._service.reset(scope)
        return "Forgotten: this conversation starts over."

    async def _usage(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        budget = self._service.budget
        used = await budget.used(scope.user_key, scope.server_key)
        chat = await self._service.settings.resolve(scope)
        lines = [
            f"You used {used.person} tokens today" + _left(used.person, chat.daily_tokens_person)
        ]
        lines.append(
            f"This community used {used.community}"
            + _left(used.community, chat.daily_tokens_community)
        )
        lines.append(f"Budgets reset in {duration_text(used.resets_in_s)} (midnight UTC).")
        if scope.role >= Role.ADMIN and scope.shared:
            top = await budget.top(scope.server_key)
            if top:
                lines.append("Top users today:")
                prefix = f"{scope.platform}:user:"
                lines += [f"  {who.removeprefix(prefix)}: {tokens}" for who, tokens in top]
        return "\n".join(lines)

    # -- settings --------------------------------------------------------------------
    async def _settings_show(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        shown = await self._service.settings.show(scope)
        lines = [f"{setting.name} = {setting.text}  ({setting.source})" for setting in shown]
        return "Settings here:\n" + "\n".join(lines)

    async def _settings_set(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        level = SettingLevel(args["level"])
        name = args["key"]
        old, new = await self._service.settings.set(scope, name, args["value"], level)
        return f"{name}: {old!r} -> {new!r} at {level.value} level."

    async def _settings_reset(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        level = SettingLevel(args["level"])
        key = args["key"]
        await self._service.settings.reset(scope, key, level)
        return f"{key or 'all settings'} reset at {level.value} level; inherited values apply."

    async def _transcribe(self, scope: Scope, args: Args, sink: ReplySink) -> None:
        await self._voice.transcribe_only(scope, args["clip"], sink)
        return None

    # -- documents -------------------------------------------------------------------
    def _documents(self) -> DocsService:
        if self._docs is None:
            raise InvalidRequest("documents are not available in this deployment")
        return self._docs

    async def _docs_list(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        return await self._documents().render_list(scope.server_key)

    async def _docs_ask(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        answer = await self._documents().ask(scope.server_key, args["question"])
        return answer.render()

    async def _docs_summarize(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        summary = await self._documents().summarize(scope.server_key, args["target"])
        return summary.render()

    async def _docs_add(self, scope: Scope, args: Args, sink: ReplySink) -> str | None:
        upload: Upload | None = args["file"]
        if upload is not None:
            await add_upload(self._docs, scope, upload, sink)
            return None
        if args["url"] is None:
            raise InvalidRequest("usage: /docs add URL, or send a file with the caption /docs add")
        return await self._documents().add(scope, args["url"])

    async def _docs_remove(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        return await self._documents().remove(scope, args["document"])

    async def _show_stats(self, scope: Scope, args: Args, sink: ReplySink) -> str:
        if self._stats is None:
            raise InvalidRequest("statistics are not available in this deployment")
        return await self._stats.render()


def _left(used: int, budget: int) -> str:
    if not budget:
        return " (no daily limit)."
    return f" of {budget}; {max(0, budget - used)} left."
