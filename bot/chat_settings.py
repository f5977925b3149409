"""What people may tune, at which level, and what a conversation ends up using.

Settings resolve from the narrowest level to the widest (conversation -> channel ->
server -> global -> the configured defaults): the first level holding a key wins, so a
user can try a hotter temperature in their thread without changing the server's.
Who may change which level is `bot.scope.required_role` (in shared places, such as a
group or a server channel, the conversation level is the admins' too). Every value typed by a person
goes through `SettingSpec.parse`, whose errors say what is allowed; values read back from
Redis are checked again, so a hand-edited or outdated value falls through to the next
level instead of reaching the model.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from dataclasses import dataclass
from typing import Any, Literal

from agent_graph.graph import TOOL_ROUTING_MODES, ToolRouting
from bot.config import SamplingDefaults
from bot.errors import PermissionDenied, SettingError
from bot.scope import LEVEL_CHAIN, Role, Scope, SettingLevel, required_role
from storage.settings_store import AuditEntry, RedisSettingsStore

logger = logging.getLogger(__name__)

KNOWN_TOOLS: tuple[str, ...] = ("calculator", "web_search", "search_documents")

SettingKind = Literal["float", "int", "str", "tools", "choice"]

_TOOLS_ALLOWED = f"'all', 'none' or a comma-separated list of: {', '.join(KNOWN_TOOLS)}"


@dataclass(frozen=True)
class SettingSpec:
    """One tunable setting: its type, its allowed range, and a line of help."""

    name: str
    kind: SettingKind
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""
    max_length: int | None = None  # for kind "str"; such values are never empty
    choices: tuple[str, ...] = ()  # for kind "choice": the allowed words
    # The levels it may be set at (None: all). Budgets belong to a community or everyone.
    levels: tuple[SettingLevel, ...] | None = None
    # A ceiling: the lowest value set at any level applies, so no narrower level (and no
    # member of a private chat that is its own "server") can raise what a wider one set.
    lowest_wins: bool = False

    def parse(self, raw: str) -> Any:
        """The value `raw` (as a person typed it) stands for; SettingError if not allowed."""
        text = raw.strip()
        if self.kind == "float":
            try:
                number = float(text)
            except ValueError:
                number = math.nan
            # float() accepts "nan" and "inf"; neither is a usable sampling value.
            if not math.isfinite(number) or not self._in_range(number):
                raise SettingError(f"{self.name} must be {self.allowed()} (got {raw!r})")
            return number
        if self.kind == "int":
            try:
                whole = int(text)
            except ValueError:
                raise SettingError(f"{self.name} must be {self.allowed()} (got {raw!r})") from None
            if not self._in_range(whole):
                raise SettingError(f"{self.name} must be {self.allowed()} (got {raw!r})")
            return whole
        if self.kind == "str":
            if not text or (self.max_length is not None and len(text) > self.max_length):
                got = "an empty value" if not text else f"{len(text)} characters"
                raise SettingError(f"{self.name} must be {self.allowed()} (got {got})")
            return text
        if self.kind == "choice":
            if text.lower() not in self.choices:
                raise SettingError(f"{self.name} must be {self.allowed()} (got {raw!r})")
            return text.lower()
        return _parse_tools(self.name, text)

    def check(self, value: Any) -> Any:
        """A value read back from storage, in this setting's Python type; SettingError if bad."""
        if self.kind == "float" and isinstance(value, int | float) and not isinstance(value, bool):
            return self.parse(repr(float(value)))
        if self.kind == "int" and isinstance(value, int) and not isinstance(value, bool):
            return self.parse(str(value))
        if self.kind in ("str", "choice") and isinstance(value, str):
            return self.parse(value)
        if self.kind == "tools" and isinstance(value, list | tuple):
            return self.parse(",".join(str(item) for item in value) or "none")
        raise SettingError(f"{self.name} must be {self.allowed()} (got {value!r})")

    def allowed(self) -> str:
        """The allowed values, as a phrase: "a number from 0.0 to 2.0"."""
        if self.kind == "float":
            return f"a number from {self.minimum} to {self.maximum}"
        if self.kind == "int":
            return f"a whole number from {_whole(self.minimum)} to {_whole(self.maximum)}"
        if self.kind == "str":
            return f"text of 1 to {self.max_length} characters"
        if self.kind == "choice":
            return "one of: " + ", ".join(self.choices)
        return _TOOLS_ALLOWED

    def format_value(self, value: Any) -> str:
        """How a value is shown to people (and typed back: parse(format_value(v)) == v)."""
        if self.kind == "tools":
            return ", ".join(value) if value else "none"
        return str(value)

    def _in_range(self, number: float) -> bool:
        return (self.minimum is None or number >= self.minimum) and (
            self.maximum is None or number <= self.maximum
        )


def _whole(bound: float | None) -> str:
    return str(int(bound)) if bound is not None else "?"


def _parse_tools(name: str, text: str) -> tuple[str, ...]:
    lowered = text.lower()
    if lowered == "all":
        return KNOWN_TOOLS
    if lowered == "none":
        return ()
    chosen = {item.strip() for item in lowered.split(",") if item.strip()}
    if not chosen:
        raise SettingError(f"{name} must be {_TOOLS_ALLOWED} (got {text!r})")
    unknown = sorted(chosen.difference(KNOWN_TOOLS))
    if unknown:
        raise SettingError(
            f"unknown tool {', '.join(map(repr, unknown))}; {name} must be {_TOOLS_ALLOWED}"
        )
    # Canonical order, so equal choices compare (and display) equal.
    return tuple(tool for tool in KNOWN_TOOLS if tool in chosen)


_WIDE_LEVELS = (SettingLevel.CHANNEL, SettingLevel.SERVER, SettingLevel.GLOBAL)
_BUDGET_LEVELS = (SettingLevel.SERVER, SettingLevel.GLOBAL)

SETTING_SPECS: dict[str, SettingSpec] = {
    spec.name: spec
    for spec in (
        SettingSpec("temperature", "float", 0.0, 2.0, "randomness; 0 always picks the likeliest"),
        SettingSpec("top_p", "float", 0.0, 1.0, "nucleus sampling: keep this share of mass"),
        SettingSpec("top_k", "int", 0, 1000, "keep the k likeliest tokens; 0 = off"),
        SettingSpec("min_p", "float", 0.0, 1.0, "drop tokens below this share of the top one"),
        SettingSpec("repeat_penalty", "float", 0.5, 2.0, "above 1 discourages repetition"),
        SettingSpec("max_tokens", "int", 1, 8192, "longest reply, in tokens"),
        SettingSpec("seed", "int", -1, 2**31 - 1, "fixed seed for repeatable replies; -1 = random"),
        SettingSpec(
            "system_prompt", "str", description="instructions the model follows", max_length=4000
        ),
        SettingSpec("tools", "tools", description="tools the agent may use"),
        SettingSpec(
            "tool_routing",
            "choice",
            description="who picks tools: router (fast, any model), model (its own choice), off",
            choices=TOOL_ROUTING_MODES,
        ),
        SettingSpec(
            "busy_mode",
            "choice",
            description="a question asked while another is answered: queue it, or interrupt",
            choices=("queue", "interrupt"),
        ),
        SettingSpec(
            "burst_window_s",
            "float",
            0.0,
            10.0,
            "one person's messages this many seconds apart become one question; 0 = off",
        ),
        SettingSpec(
            "max_tokens_limit",
            "int",
            1,
            8192,
            "ceiling on max_tokens that narrower levels cannot exceed",
            levels=_WIDE_LEVELS,
            lowest_wins=True,
        ),
        SettingSpec(
            "daily_tokens_person",
            "int",
            0,
            10**9,
            "tokens (prompt + answer) one person may use a day; 0 = unlimited",
            levels=_BUDGET_LEVELS,
            lowest_wins=True,
        ),
        SettingSpec(
            "daily_tokens_community",
            "int",
            0,
            10**9,
            "tokens the whole community may use a day; 0 = unlimited",
            levels=_BUDGET_LEVELS,
            lowest_wins=True,
        ),
    )
}
# Settings that only admins may change anywhere: they govern what others may spend.
ADMIN_SETTINGS = frozenset({"max_tokens_limit", "daily_tokens_person", "daily_tokens_community"})


def spec_for(name: str) -> SettingSpec:
    """The spec of setting `name` (case and '-' vs '_' forgiven); SettingError if unknown."""
    key = name.strip().lower().replace("-", "_")
    spec = SETTING_SPECS.get(key)
    if spec is None:
        raise SettingError(f"unknown setting {name!r}; known settings: {', '.join(SETTING_SPECS)}")
    return spec


@dataclass(frozen=True)
class ChatSettings:
    """The settings one reply is generated with, after resolution."""

    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repeat_penalty: float
    max_tokens: int
    seed: int
    system_prompt: str
    tools: tuple[str, ...]
    tool_routing: ToolRouting = "router"
    busy_mode: str = "queue"
    burst_window_s: float = 1.5
    max_tokens_limit: int = 8192
    daily_tokens_person: int = 0
    daily_tokens_community: int = 0

    @classmethod
    def from_defaults(cls, defaults: SamplingDefaults) -> ChatSettings:
        """The configured defaults, with every known tool enabled."""
        return cls(
            temperature=defaults.temperature,
            top_p=defaults.top_p,
            top_k=defaults.top_k,
            min_p=defaults.min_p,
            repeat_penalty=defaults.repeat_penalty,
            max_tokens=defaults.max_tokens,
            seed=defaults.seed,
            system_prompt=defaults.system_prompt,
            tools=KNOWN_TOOLS,
            tool_routing=defaults.tool_routing,
            busy_mode=defaults.busy_mode,
            burst_window_s=defaults.burst_window_s,
            max_tokens_limit=defaults.max_tokens_limit,
            daily_tokens_person=defaults.daily_tokens_person,
            daily_tokens_community=defaults.daily_tokens_community,
        )

    @property
    def answer_tokens(self) -> int:
        """The longest answer allowed: max_tokens within its ceiling."""
        return min(self.max_tokens, self.max_tokens_limit)


DEFAULT_SOURCE = "default"


@dataclass(frozen=True)
class ShownSetting:
    """A resolved value and where it came from: a level's name, or "default"."""

    name: str
    value: Any
    source: str

    @property
    def text(self) -> str:
        return SETTING_SPECS[self.name].format_value(self.value)


class SettingsService:
    """Resolves, shows and changes settings for a scope, enforcing who may change what."""

    def __init__(self, store: RedisSettingsStore, defaults: ChatSettings) -> None:
        self._store = store
        self._defaults = defaults

    async def resolve(self, scope: Scope) -> ChatSettings:
        """The settings a reply in `scope` uses."""
        resolved = await self._resolve_with_sources(scope)
        return dataclasses.replace(
            self._defaults, **{name: value for name, (value, _) in resolved.items()}
        )

    async def show(self, scope: Scope) -> list[ShownSetting]:
        """Every setting's value in `scope`, and the level it comes from."""
        resolved = await self._resolve_with_sources(scope)
        shown = []
        for name in SETTING_SPECS:
            value, source = resolved.get(name, (getattr(self._defaults, name), DEFAULT_SOURCE))
            shown.append(ShownSetting(name, value, source))
        return shown

    async def set(
        self, scope: Scope, name: str, raw_value: str, level: SettingLevel
    ) -> tuple[Any, Any]:
        """Store `raw_value` for `name` at `level` of `scope`.

        Returns (old, new): the value previously stored at that level (None if it was
        unset there) and the parsed new value.
        """
        _check_role(scope, level, "change")
        spec = spec_for(name)
        _check_setting_level(scope, spec, level)
        value = spec.parse(raw_value)
        if spec.name == "max_tokens":
            ceiling = (await self.resolve(scope)).max_tokens_limit
            if value > ceiling:
                raise SettingError(
                    f"max_tokens here may be at most {ceiling} (max_tokens_limit, set by "
                    "an admin or the operator)"
                )
        old = await self._store.set_value(
            scope.level_key(level), spec.name, _to_json(value), scope.actor
        )
        return _typed(spec, old), value

    async def reset(self, scope: Scope, name: str | None, level: SettingLevel) -> dict[str, Any]:
        """Remove `name` (or, when None, every setting) at `level`; returns what was removed."""
        _check_role(scope, level, "reset")
        level_key = scope.level_key(level)
        if name is None:
            removed = await self._store.clear_level(level_key, scope.actor)
            return {key: _typed(SETTING_SPECS.get(key), value) for key, value in removed.items()}
        spec = spec_for(name)
        if spec.name in ADMIN_SETTINGS and scope.role < Role.ADMIN:
            raise PermissionDenied(f"only admins can change {spec.name}; ask an admin")
        old = await self._store.delete_value(level_key, spec.name, scope.actor)
        return {} if old is None else {spec.name: _typed(spec, old)}

    async def audit(self, scope: Scope, count: int = 20) -> list[AuditEntry]:
        """The newest changes to any level `scope` resolves through, newest first."""
        return await self._store.audit_entries(
            count, [scope.level_key(level) for level in LEVEL_CHAIN]
        )

    async def _resolve_with_sources(self, scope: Scope) -> dict[str, tuple[Any, str]]:
        levels = await self._store.get_levels([scope.level_key(level) for level in LEVEL_CHAIN])
        resolved: dict[str, tuple[Any, str]] = {}
        for level, values in zip(LEVEL_CHAIN, levels, strict=True):
            for name, stored in values.items():
                spec = SETTING_SPECS.get(name)
                if spec is None or (name in resolved and not spec.lowest_wins):
                    continue
                if spec.levels is not None and level not in spec.levels:
                    continue  # written where it does not belong: not trusted
                try:
                    value = spec.check(stored)
                except SettingError as exc:
                    # Stored by hand or under an older schema: fall through to wider levels.
                    logger.warning("ignoring %s setting %s: %s", level.value, name, exc)
                    continue
                if spec.lowest_wins and name in resolved and not _lower(value, resolved[name][0]):
                    continue
                resolved[name] = (value, level.value)
        for name, (value, _) in list(resolved.items()):
            spec = SETTING_SPECS[name]
            default = getattr(self._defaults, name)
            if spec.lowest_wins and not _lower(value, default):
                resolved.pop(name)  # the configured ceiling is lower: it applies
        return resolved


def _lower(value: Any, than: Any) -> bool:
    """For ceilings: 0 means "no limit", so any positive value is lower than it."""
    if than == 0:
        return bool(value != 0)
    return bool(value != 0 and value < than)


def _check_role(scope: Scope, level: SettingLevel, verb: str) -> None:
    needed = required_role(level, scope.shared)
    if scope.role >= needed:
        return
    who = "admins" if needed is Role.ADMIN else "the bot operator"
    ask = "an admin" if needed is Role.ADMIN else "the operator"
    if scope.shared and level is SettingLevel.CONVERSATION:
        raise PermissionDenied(
            f"this conversation is shared by everyone here, so only {who} can {verb} its "
            f"settings; ask {ask}"
        )
    # The widest level this person may change: what they can do instead.
    allowed = [lvl for lvl in LEVEL_CHAIN if scope.role >= required_role(lvl, scope.shared)]
    instead = f", or use --level {allowed[-1].value}" if allowed else ""
    raise PermissionDenied(f"only {who} can {verb} {level.value} settings; ask {ask}{instead}")


def _check_setting_level(scope: Scope, spec: SettingSpec, level: SettingLevel) -> None:
    if spec.levels is not None and level not in spec.levels:
        where = " or ".join(lvl.value for lvl in spec.levels)
        raise SettingError(
            f"{spec.name} is set at the {where} level: add --level {spec.levels[0].value}"
        )
    if spec.name in ADMIN_SETTINGS and scope.role < Role.ADMIN:
        raise PermissionDenied(f"only admins can change {spec.name}; ask an admin")


def _to_json(value: Any) -> Any:
    # Tuples (tools) are stored as JSON lists.
    return list(value) if isinstance(value, tuple) else value


def _typed(spec: SettingSpec | None, stored: Any) -> Any:
    """A stored value in its setting's type; as stored when it no longer checks out."""
    if spec is None or stored is None:
        return stored
    try:
        return spec.check(stored)
    except SettingError:
        return stored
