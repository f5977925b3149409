"""Every tunable setting: its type, range, allowed levels and help (`SETTING_SPECS`).

`SettingSpec.parse` turns what a person typed into a value, with errors that say what is
allowed; `SettingSpec.check` re-checks a value read back from storage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from agent_graph.document_answer import DOCUMENT_ANSWER_MODES
from agent_graph.graph import TOOL_ROUTING_MODES
from bot.errors import SettingError
from bot.scope import SettingLevel
from bot.speech.languages import AUTO, WHISPER_LANGUAGES

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
            "document_answers",
            "choice",
            description="what is shown of answers from documents: strict (only what the "
            "documents support), mark (unsupported sentences marked), off",
            choices=DOCUMENT_ANSWER_MODES,
            levels=_WIDE_LEVELS,
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
            "voice",
            "choice",
            description="voice messages and audio: transcribed and answered (on), or not (off)",
            choices=("on", "off"),
        ),
        SettingSpec(
            "voice_language",
            "choice",
            description="language of voice messages: auto (detected) or a code such as en, es",
            choices=(AUTO, *WHISPER_LANGUAGES),
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
# Settings that only admins may change anywhere: the ceilings, which govern what others
# may spend.
ADMIN_SETTINGS = frozenset(name for name, spec in SETTING_SPECS.items() if spec.lowest_wins)


def spec_for(name: str) -> SettingSpec:
    """The spec of setting `name` (case and '-' vs '_' forgiven); SettingError if unknown."""
    key = name.strip().lower().replace("-", "_")
    spec = SETTING_SPECS.get(key)
    if spec is None:
        raise SettingError(f"unknown setting {name!r}; known settings: {', '.join(SETTING_SPECS)}")
    return spec
