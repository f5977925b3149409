"""How a model writes tool calls and sees tools, earlier calls and their results.

- `JSON_OBJECT`, ours, works with any chat template: the tools are described in the
  system message, a call is a bare JSON object `{"name": ..., "arguments": {...}}` that
  must open the answer, earlier calls and results are shown as plain text.
- `HERMES`, native to templates that know tools this way (Qwen 2.5/3, Hermes, SmolLM3 and
  others): the template itself renders `tools`, earlier calls and `tool` messages; a
  call is the same JSON object inside `<tool_call>` ... `</tool_call>`, and may follow
  some text.
- `LLAMA3`, native to Llama 3.1-3.3 templates: the template renders the tools, calls
  and results; a call is a bare object `{"name": ..., "parameters": {...}}` that opens
  the answer.

Models trained on a native format call tools more reliably in it. Whatever the format,
the call's JSON is constrained by the grammar built from the tools' schemas; a tagged
format only wraps that grammar in its tags.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from inference.errors import InvalidJob

# The grammar rule the wrapped call grammar's own root is renamed to.
_CALL_RULE = "tool-call-json"
# How every call's JSON begins in the grammar, one regex atom per character: the brace,
# the schema grammar's optional space, `"name"`, the colon, the name's opening quote.
_CALL_JSON_OPENING = ["\\{", " ?", '"', "n", "a", "m", "e", '"', " ?", ":", " ?", '"']


def _prefix_of(atoms: list[str]) -> str:
    """A regex matching the first atom followed by any prefix of the others."""
    pattern = ""
    for atom in reversed(atoms[1:]):
        pattern = f"(?:{atom}{pattern})?"
    return atoms[0] + pattern


@dataclass(frozen=True)
class ToolCallFormat:
    name: str
    native: bool = False  # the chat template renders tools, calls and results itself
    open_tag: str = ""  # empty: a bare JSON object that opens the answer
    close_tag: str = ""
    arguments_key: str = "arguments"  # the call object's key for the arguments

    @property
    def tagged(self) -> bool:
        return bool(self.open_tag)

    @property
    def lazy_trigger(self) -> str:
        """The pattern after which an `auto` answer is held to the grammar.

        llama.cpp tries it on the output so far after each token and, on a match, feeds
        the grammar everything from the first group on: that text must be a start the
        grammar accepts, or llama.cpp aborts the process. So the pattern is anchored at
        both ends (`^...$`: llama.cpp then matches the whole output, not a part of it)
        and ends where the call begins, allowing only a beginning of the call's JSON
        after it (one token may hold several characters). A token that runs further, or
        wrongly, does not wake the grammar: the answer is parsed as it is, and a broken
        call is refused with a clear error.
        """
        if not self.tagged:
            # A call is the whole answer, leading blanks aside.
            return r"^\s*(" + _prefix_of(_CALL_JSON_OPENING) + ")$"
        after_tag = ["\\n?", *_CALL_JSON_OPENING]
        return r"^[\s\S]*?(" + re.escape(self.open_tag) + _prefix_of(["", *after_tag]) + ")$"

    def wrap_grammar(self, call_grammar: str) -> str:
        """The grammar of a whole call, from the grammar of its JSON object."""
        if not self.tagged:
            return call_grammar
        renamed, count = re.subn(r"^root(\s*::=)", _CALL_RULE + r"\1", call_grammar, flags=re.M)
        if count != 1:
            raise InvalidJob("cannot wrap the tool-call grammar in the model's call tags")
        opening, closing = json.dumps(self.open_tag), json.dumps(self.close_tag)
        return f'root ::= {opening} "\\n"? {_CALL_RULE} "\\n"? {closing}\n{renamed}'

    def split_answer(self, text: str) -> tuple[str, str, bool | None]:
        """Split an answer seen so far into (text to show now, text held back, whether a
        call has started: True, False for "never will", None for "not known yet")."""
        if not self.tagged:
            start = text.lstrip()
            if not start:
                return "", text, None
            return ("", text, True) if start.startswith("{") else (text, "", False)
        found = text.find(self.open_tag)
        if found >= 0:
            return text[:found], text[found:], True
        # Hold back a tail that may be the start of the tag, so it is never shown.
        keep = next(
            (size for size in range(len(self.open_tag) - 1, 0, -1)
             if text.endswith(self.open_tag[:size])),
            0,
        )  # fmt: skip
        return text[: len(text) - keep], text[len(text) - keep :], None

    def call_json(self, held: str) -> str:
        """The JSON object of a held call, without the format's tags."""
        body = held.strip()
        if self.tagged:
            body = body.removeprefix(self.open_tag).removesuffix(self.close_tag).strip()
        return body


JSON_OBJECT = ToolCallFormat("json")
HERMES = ToolCallFormat("hermes", native=True, open_tag="<tool_call>", close_tag="</tool_call>")
LLAMA3 = ToolCallFormat("llama3", native=True, arguments_key="parameters")
FORMATS = {fmt.name: fmt for fmt in (JSON_OBJECT, HERMES, LLAMA3)}


def detect_format(template_source: str) -> ToolCallFormat:
    """The native format a chat template was written for, or ours when it has none."""
    if "tools" not in template_source:
        return JSON_OBJECT
    if "<tool_call>" in template_source:
        return HERMES
    if "<|start_header_id|>" in template_source and '"parameters"' in template_source:
        return LLAMA3
    return JSON_OBJECT


def choose_format(template_source: str, wanted: str = "auto") -> ToolCallFormat:
    """`wanted` is "auto" (what the template knows), or a format's name."""
    if wanted == "auto":
        return detect_format(template_source)
    try:
        return FORMATS[wanted]
    except KeyError:
        names = ", ".join(["auto", *FORMATS])
        raise InvalidJob(f"unknown tool-call format {wanted!r}; use one of {names}") from None


def call_arguments(call: dict[str, Any]) -> dict[str, Any]:
    """The arguments of an OpenAI-style call in a request's history, as an object."""
    try:
        arguments = json.loads(call["function"].get("arguments") or "{}")
    except (json.JSONDecodeError, TypeError) as exc:
        raise InvalidJob("an earlier tool call's arguments are not a JSON object") from exc
    if not isinstance(arguments, dict):
        raise InvalidJob("an earlier tool call's arguments are not a JSON object")
    return arguments


def native_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Messages as tool-aware templates expect them: a call's arguments as an object
    (templates write them with `tojson`), tool results as `tool` messages."""
    prepared: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role", "user")
        converted: dict[str, Any] = {"role": role, "content": message.get("content") or ""}
        if role == "assistant" and message.get("tool_calls"):
            converted["tool_calls"] = [
                {
                    "id": call.get("id") or "",
                    "type": "function",
                    "function": {
                        "name": call["function"]["name"],
                        "arguments": call_arguments(call),
                    },
                }
                for call in message["tool_calls"]
            ]
        elif role == "tool":
            converted["name"] = message.get("name") or ""
            converted["tool_call_id"] = message.get("tool_call_id") or ""
        prepared.append(converted)
    return prepared
