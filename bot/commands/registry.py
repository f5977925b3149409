"""Every command, declared once: its name, summary, typed arguments and who may run it.

The help text, Telegram's command menus, the Discord slash tree, the terminal's parsing
and the role checks are all derived from `COMMANDS`. A command typed as text ("/settings
set temperature 0.5 --level channel") is parsed here, once, into a `CommandCall`; a slash
command's options become one directly. Either way `CommandSpec.bind` checks and converts
the arguments, so a forged option gets the same clear error as a mistyped one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from bot.errors import InvalidRequest, PermissionDenied
from bot.requests import CommandCall, Upload
from bot.scope import Role, Scope

# text: the rest of the line, spaces kept; word: one token; setting: a setting's key;
# file: an upload the platform attached (never typed).
ArgKind = Literal["text", "word", "int", "choice", "setting", "file"]
LEVELS = ("conversation", "channel", "server", "global")
# A command's text arguments are bounded like a message (the chat service's own limit).
MAX_ARGUMENT_CHARS = 16000


@dataclass(frozen=True)
class Arg:
    name: str
    kind: ArgKind
    help: str
    required: bool = True
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    # Typed as "--name VALUE" anywhere in the text (a slash option like any other).
    option: bool = False
    default: Any = None

    def convert(self, raw: Any) -> Any:
        """`raw` (typed text or a platform's option value) as this argument's value."""
        if self.kind == "file":
            if not isinstance(raw, Upload):
                raise InvalidRequest(f"{self.name} must be a file sent with the command")
            return raw
        if isinstance(raw, bool) or not isinstance(raw, str | int):
            raise InvalidRequest(f"{self.name} must be {self.allowed()}")
        text = str(raw).strip()
        if len(text) > MAX_ARGUMENT_CHARS:
            raise InvalidRequest(
                f"{self.name} is too long: at most {MAX_ARGUMENT_CHARS} characters"
            )
        if self.kind == "int":
            if not re.fullmatch(r"#?-?\d{1,12}", text):
                raise InvalidRequest(f"{self.name} must be {self.allowed()} (got {text[:40]!r})")
            number = int(text.lstrip("#"))
            if (self.minimum is not None and number < self.minimum) or (
                self.maximum is not None and number > self.maximum
            ):
                raise InvalidRequest(f"{self.name} must be {self.allowed()} (got {number})")
            return number
        if self.kind == "choice":
            if text.lower() not in self.choices:
                raise InvalidRequest(f"{self.name} must be {self.allowed()} (got {text[:40]!r})")
            return text.lower()
        if self.kind == "setting":
            from bot.chat_settings import spec_for  # the settings import the registry's errors

            return spec_for(text).name
        if not text:
            raise InvalidRequest(f"{self.name} must not be empty")
        return text

    def allowed(self) -> str:
        if self.kind == "int":
            low = "" if self.minimum is None else f" from {self.minimum}"
            high = "" if self.maximum is None else f" to {self.maximum}"
            return f"a whole number{low}{high}"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "setting":
            return "a setting's name (see /help)"
        return "text"

    def placeholder(self) -> str:
        shown = f"--{self.name} {self.name.upper()}" if self.option else self.name.upper()
        return shown if self.required else f"[{shown}]"


@dataclass(frozen=True)
class CommandSpec:
    name: str  # "help", "settings set": a group's subcommand after a space
    summary: str
    args: tuple[Arg, ...] = ()
    role: Role = Role.USER  # the least role anywhere
    # The least role where several people share the conversation (it affects them all).
    shared_role: Role | None = None
    platforms: frozenset[str] | None = None  # None: every platform
    aliases: tuple[str, ...] = ()

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.name.split())

    @property
    def usage(self) -> str:
        return " ".join(
            ["/" + self.name, *(arg.placeholder() for arg in self.args if arg.kind != "file")]
        )

    def offered_on(self, platform: str) -> bool:
        return self.platforms is None or platform in self.platforms

    def needed_role(self, scope: Scope) -> Role:
        if scope.shared and self.shared_role is not None:
            return max(self.role, self.shared_role)
        return self.role

    def check_role(self, scope: Scope) -> None:
        needed = self.needed_role(scope)
        if scope.role >= needed:
            return
        who = "the bot's operator" if needed is Role.OPERATOR else "admins"
        where = " in a shared chat" if needed > self.role else ""
        raise PermissionDenied(f"only {who} can use /{self.name}{where}; ask {_ask(needed)}")

    def bind(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Checked, typed arguments from `raw`; InvalidRequest naming the problem and usage."""
        unknown = sorted(set(raw) - {arg.name for arg in self.args})
        if unknown:
            raise InvalidRequest(f"/{self.name} has no option {unknown[0]!r}; usage: {self.usage}")
        bound: dict[str, Any] = {}
        for arg in self.args:
            value = raw.get(arg.name)
            if value is None or (isinstance(value, str) and not value.strip()):
                if arg.required:
                    raise InvalidRequest(f"usage: {self.usage}")
                bound[arg.name] = arg.default
                continue
            try:
                bound[arg.name] = arg.convert(value)
            except InvalidRequest as exc:
                raise InvalidRequest(f"{exc}; usage: {self.usage}") from None
        return bound


def _ask(role: Role) -> str:
    return "the operator" if role is Role.OPERATOR else "an admin"


_LEVEL = Arg(
    "level",
    "choice",
    "where: conversation (default), channel, server or global",
    required=False,
    choices=LEVELS,
    option=True,
    default="conversation",
)

COMMANDS: tuple[CommandSpec, ...] = (
    CommandSpec("help", "what the bot can do: commands and settings", aliases=("start",)),
    CommandSpec(
        "ask",
        "ask the bot (where it reads only commands and mentions)",
        (Arg("question", "text", "what you want to know"),),
    ),
    CommandSpec("cancel", "stop the answer being written (questions waiting stay queued)"),
    CommandSpec("reset", "forget this conversation", shared_role=Role.ADMIN),
    CommandSpec("usage", "tokens you used today and what is left (admins: top users)"),
    CommandSpec("settings show", "the settings in effect here, and where each comes from"),
    CommandSpec(
        "settings set",
        "change a setting (shared chats: admins)",
        (
            Arg("key", "setting", "the setting (each shows its allowed values)"),
            Arg("value", "text", "the new value, within the setting's allowed range"),
            _LEVEL,
        ),
    ),
    CommandSpec(
        "settings reset",
        "go back to the inherited value (all settings without KEY)",
        (Arg("key", "setting", "one setting; all of them when left out", required=False), _LEVEL),
    ),
    CommandSpec("docs list", "this community's documents"),
    CommandSpec(
        "docs ask",
        "ask the documents; the answer cites them",
        (Arg("question", "text", "what you want to know"),),
    ),
    CommandSpec(
        "docs summarize",
        "title, key points and abstract of a document or web page",
        (Arg("target", "word", "a document's number in /docs list, or a URL"),),
    ),
    CommandSpec(
        "docs add",
        "add a web page or a file (admins)",
        (
            Arg("url", "word", "a web page (or a local path, for the operator)", required=False),
            Arg("file", "file", "a text, Markdown, HTML or PDF file", required=False),
        ),
        role=Role.ADMIN,
    ),
    CommandSpec(
        "docs remove",
        "remove a document (admins)",
        (Arg("document", "int", "its number in /docs list", minimum=1, maximum=2**31 - 1),),
        role=Role.ADMIN,
    ),
    CommandSpec(
        "stats", "workers, queue, tokens/s, answers being written (admins)", role=Role.ADMIN
    ),
)


class CommandRegistry:
    def __init__(self, specs: Iterable[CommandSpec] = COMMANDS) -> None:
        self.specs: tuple[CommandSpec, ...] = tuple(specs)
        self._by_name: dict[str, CommandSpec] = {}
        for spec in self.specs:
            for name in (spec.name, *spec.aliases):
                if name in self._by_name:
                    raise ValueError(f"command {name!r} is declared twice")
                self._by_name[name] = spec

    def get(self, name: str) -> CommandSpec:
        spec = self._by_name.get(name)
        if spec is None:
            raise InvalidRequest(f"unknown command /{name[:40]}; send /help for the list")
        return spec

    def top_level(self) -> dict[str, list[CommandSpec]]:
        """Commands by their first word, in declaration order (a group's subcommands)."""
        tops: dict[str, list[CommandSpec]] = {}
        for spec in self.specs:
            tops.setdefault(spec.path[0], []).append(spec)
        return tops

    def is_command_name(self, word: str) -> bool:
        return word.lower() in self.top_level() or word.lower() in self._by_name

    def parse(self, scope: Scope, text: str) -> CommandCall:
        """The command typed in `text` ("/settings set top_k 20 --level server")."""
        head, _, rest = text.strip().partition(" ")
        return self.call(scope, head, rest)

    def call(self, scope: Scope, command: str, rest: str) -> CommandCall:
        """The command named `command` ("/settings", "settings@bot") with the text typed
        after it, as a platform that found the command's name itself hands it over."""
        top = command.lstrip("/").split("@", 1)[0].lower()
        spec = self._by_name.get(top)
        group = self.top_level().get(top, [])
        if spec is None and group:
            sub, _, after = rest.strip().partition(" ")
            name = f"{top} {sub.lower()}".strip()
            spec = self._by_name.get(name)
            if spec is None:
                if not sub and f"{top} show" in self._by_name:
                    spec, after = self._by_name[f"{top} show"], ""
                else:
                    usages = " | ".join(member.usage for member in group)
                    raise InvalidRequest(f"usage: {usages}")
            rest = after
        if spec is None:
            raise InvalidRequest(f"unknown command /{top[:40]}; send /help for the list")
        return CommandCall(scope, spec.name, _read_arguments(spec, rest))

    def help_text(self, scope: Scope, setting_keys: Iterable[str]) -> str:
        lines = ["Talk to me in plain text. Commands:"]
        for spec in self.specs:
            if not spec.offered_on(scope.platform) or scope.role < spec.role:
                continue
            lines.append(f"  {spec.usage}\n      {spec.summary}")
        lines.append("Settings: " + ", ".join(setting_keys) + ".")
        if scope.shared:
            lines.append("This chat is shared: only admins change its settings.")
        else:
            lines.append("Here you change your own conversation's settings.")
        return "\n".join(lines)


def _read_arguments(spec: CommandSpec, rest: str) -> dict[str, str]:
    """Typed text split into `spec`'s arguments: options first, then positionals in order
    (a "text" argument takes the rest of the line as typed)."""
    raw: dict[str, str] = {}
    for arg in spec.args:
        if not arg.option:
            continue
        match = re.search(rf"(?:^|\s)--{arg.name}(?:\s+(\S+))?", rest)
        if match is not None:
            if match.group(1) is None:
                raise InvalidRequest(f"--{arg.name} needs {arg.allowed()}; usage: {spec.usage}")
            raw[arg.name] = match.group(1)
            rest = (rest[: match.start()] + rest[match.end() :]).strip()
    stray = re.search(r"(?:^|\s)(--[a-z_]+)", rest)
    positionals = [arg for arg in spec.args if not arg.option and arg.kind != "file"]
    if stray is not None and not any(arg.kind == "text" for arg in positionals):
        raise InvalidRequest(f"unknown option {stray.group(1)}; usage: {spec.usage}")
    for arg in positionals:
        rest = rest.strip()
        if not rest:
            break
        if arg.kind == "text":
            raw[arg.name], rest = rest, ""
            break
        word, _, rest = rest.partition(" ")
        raw[arg.name] = word
    if rest.strip():
        raise InvalidRequest(f"too many arguments; usage: {spec.usage}")
    return raw


REGISTRY = CommandRegistry()
