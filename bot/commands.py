"""Slash commands, shared by every platform: /help, /reset, /cancel, /settings ..."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.chat_service import ChatService
from bot.chat_settings import SETTING_SPECS
from bot.docs_commands import DocsCommands
from bot.errors import InvalidRequest, PermissionDenied
from bot.failures import describe_failure
from bot.reply_sink import ReplySink, send_text
from bot.scope import Role, Scope, SettingLevel
from bot.stats import BotStats

HELP_TEXT = """\
Talk to me in plain text. Commands:
  /help                                   this help
  /reset                                  forget this conversation
  /cancel                                 stop the answer being written
  /settings show                          the settings in effect here, and where each comes from
  /settings set KEY VALUE [--level L]     change a setting at level L: conversation
                                          (default), channel, server or global
  /settings reset [KEY] [--level L]       go back to the inherited value (all keys without KEY)
  /ask QUESTION                           ask (where plain messages are not read)
  /docs list | ask QUESTION               this community's documents; answers cite them
  /docs summarize ID_OR_URL               a summary of one document or page
  /docs add URL | remove ID               change the documents (admins; a file sent with
                                          the caption /docs add works too)
  /stats                                  how busy the bot is (admins)
Settings: {keys}.
Anyone may change their conversation; channel and server levels are for admins."""


@dataclass(frozen=True)
class Command:
    name: str
    rest: str  # everything after the name, as typed (a system prompt keeps its spacing)

    @property
    def args(self) -> list[str]:
        return self.rest.split()


def is_command(text: str) -> bool:
    return text.lstrip().startswith("/")


def parse_command(text: str) -> Command:
    name, _, rest = text.strip().partition(" ")
    # Strip the bot mention some platforms add ("/help@my_bot").
    name = name.split("@", 1)[0].lower()
    return Command(name=name, rest=rest.strip())


_LEVEL_OPTION = re.compile(r"(?:^|\s)--level(?:\s+(\S+))?")


def _take_level(rest: str) -> tuple[str, SettingLevel]:
    """Remove a `--level L` option from `rest`; conversation level when absent."""
    match = _LEVEL_OPTION.search(rest)
    if match is None:
        return rest, SettingLevel.CONVERSATION
    raw = (match.group(1) or "").lower()
    try:
        level = SettingLevel(raw)
    except ValueError:
        raise InvalidRequest(
            f"--level needs one of conversation, channel, server, global (got {raw!r})"
        ) from None
    return (rest[: match.start()] + rest[match.end() :]).strip(), level


class CommandHandler:
    def __init__(
        self,
        service: ChatService,
        docs: DocsCommands | None = None,
        stats: BotStats | None = None,
    ) -> None:
        self._service = service
        self._docs = docs
        self._stats = stats

    async def handle(self, scope: Scope, text: str, sink: ReplySink) -> None:
        try:
            reply = await self._dispatch(scope, parse_command(text))
        except Exception as exc:
            await sink.fail(describe_failure(exc, f"command {text[:40]!r}"))
            return
        await send_text(sink, reply)

    async def _dispatch(self, scope: Scope, command: Command) -> str:
        if command.name in ("/help", "/start"):
            return HELP_TEXT.format(keys=", ".join(SETTING_SPECS))
        if command.name == "/reset":
            await self._service.reset(scope)
            return "Forgotten: this conversation starts over."
        if command.name == "/cancel":
            stopped = await self._service.cancel(scope)
            return "Stopping the answer." if stopped else "Nothing to cancel."
        if command.name == "/settings":
            return await self._settings(scope, command.rest)
        if command.name == "/stats":
            if scope.role < Role.ADMIN:
                raise PermissionDenied("only admins can see the bot's load")
            if self._stats is None:
                raise InvalidRequest("statistics are not available in this deployment")
            return await self._stats.render()
        if command.name == "/docs":
            if self._docs is None:
                raise InvalidRequest("documents are not available in this deployment")
            return await self._docs.handle(scope, command.rest)
        raise InvalidRequest(f"unknown command {command.name}; send /help for the list")

    async def _settings(self, scope: Scope, text: str) -> str:
        action, _, rest = text.partition(" ")
        action = action.lower() or "show"
        rest, level = _take_level(rest.strip())
        settings = self._service.settings
        if action == "show":
            lines = [
                f"{shown.name} = {shown.text}  ({shown.source})"
                for shown in await settings.show(scope)
            ]
            return "Settings here:\n" + "\n".join(lines)
        if action == "set":
            name, _, value = rest.partition(" ")
            if not name or not value.strip():
                raise InvalidRequest("usage: /settings set KEY VALUE [--level L]")
            value = value.strip()
            old, new = await settings.set(scope, name, value, level)
            return f"{name}: {old!r} -> {new!r} at {level.value} level."
        if action == "reset":
            key = rest.split()[0] if rest else None
            await settings.reset(scope, key, level)
            what = key or "all settings"
            return f"{what} reset at {level.value} level; inherited values apply."
        raise InvalidRequest("usage: /settings show | set KEY VALUE | reset [KEY]")
