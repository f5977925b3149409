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
from dataclasses import dataclass
from typing import Any

from agent_graph.document_answer import DocumentAnswers
from agent_graph.graph import ToolRouting
from bot.config import SamplingDefaults
from bot.errors import PermissionDenied, SettingError
from bot.scope import LEVEL_CHAIN, Role, Scope, SettingLevel, required_role
from bot.setting_specs import (
    ADMIN_SETTINGS,
    KNOWN_TOOLS,
    SETTING_SPECS,
    SettingSpec,
    spec_for,
)
from bot.speech.languages import AUTO
from storage.settings_store import AuditEntry, RedisSettingsStore

__all__ = [
    "KNOWN_TOOLS",
    "SETTING_SPECS",
    "ChatSettings",
    "SettingSpec",
    "SettingsService",
    "ShownSetting",
    "spec_for",
]

logger = logging.getLogger(__name__)


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
    document_answers: DocumentAnswers = "strict"
    busy_mode: str = "queue"
    burst_window_s: float = 1.5
    voice: str = "on"
    voice_language: str = AUTO
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
