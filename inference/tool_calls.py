"""Tool calls that always parse: prompts, grammars and parsing for OpenAI-style tools.

Whatever the model, a tool call is a JSON object `{"name": ..., "arguments": {...}}`
whose arguments match the tool's JSON schema. The format is enforced by a llama.cpp
grammar built from the schemas, so even a 135M-parameter model cannot produce a call
that fails to parse or validate:

- `tool_choice` "required" or a named tool: the whole answer is constrained to a call;
- "auto": the answer is free text unless it starts with `{`; from that brace on the
  grammar takes over (a lazy grammar), so a call is complete or it is not made;
- "none" (or no tools): no grammar, and the tools are not described to the model.

With our own format (`tool_formats.JSON_OBJECT`) the model learns it from instructions
added to the system message, and earlier calls and their results are shown to it as
plain text, so the chat template needs no tool support of its own. A model whose
template has a native format gets the tools, calls and results in that format instead
(see `tool_formats`).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from llama_cpp.llama_grammar import json_schema_to_gbnf

from inference.errors import InvalidJob
from inference.tool_formats import JSON_OBJECT, ToolCallFormat, call_arguments, native_messages


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    parameters: dict[str, Any]


@dataclass(frozen=True)
class ToolPlan:
    """How one job uses its tools: which ones, and whether a call is forced."""

    tools: tuple[ToolSpec, ...]
    forced: bool  # "required" or a named tool: the answer must be a call
    grammar: str
    call_format: ToolCallFormat = JSON_OBJECT

    @property
    def lazy_trigger(self) -> str | None:
        return None if self.forced else self.call_format.lazy_trigger

    def template_tools(self) -> list[dict[str, Any]] | None:
        """The tools for a chat template that renders them itself (None for ours)."""
        if not self.call_format.native:
            return None
        return [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.parameters,
                },
            }
            for tool in self.tools
        ]


@dataclass(frozen=True)
class ToolCall:
    call_id: str
    name: str
    arguments: dict[str, Any]


def parse_tools(raw: list[dict[str, Any]]) -> tuple[ToolSpec, ...]:
    specs = []
    for index, tool in enumerate(raw):
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type", "function") != "function" or not isinstance(function, dict):
            raise InvalidJob(f"tool {index} is not an OpenAI-style function tool")
        name = function.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidJob(f"tool {index} has no name")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(parameters, dict):
            raise InvalidJob(f"tool {name!r}: parameters must be a JSON schema object")
        specs.append(ToolSpec(name, str(function.get("description", "")), parameters))
    if len({spec.name for spec in specs}) != len(specs):
        raise InvalidJob("two tools have the same name")
    return tuple(specs)


def plan_tools(
    raw_tools: list[dict[str, Any]], tool_choice: Any, call_format: ToolCallFormat = JSON_OBJECT
) -> ToolPlan | None:
    """The plan for a job, or None when it uses no tools. Bad input raises `InvalidJob`."""
    if not raw_tools or tool_choice == "none":
        return None
    tools = parse_tools(raw_tools)
    forced = False
    if isinstance(tool_choice, dict):
        wanted = (tool_choice.get("function") or {}).get("name")
        tools = tuple(tool for tool in tools if tool.name == wanted)
        if not tools:
            raise InvalidJob(f"tool_choice names {wanted!r}, which is not among the tools")
        forced = True
    elif tool_choice == "required":
        forced = True
    elif tool_choice not in (None, "auto"):
        raise InvalidJob(f"tool_choice must be auto, none, required or a tool, not {tool_choice!r}")
    grammar = call_format.wrap_grammar(call_grammar(tools, call_format.arguments_key))
    return ToolPlan(tools=tools, forced=forced, grammar=grammar, call_format=call_format)


def call_grammar(tools: tuple[ToolSpec, ...], arguments_key: str = "arguments") -> str:
    schema = {
        "oneOf": [
            {
                "type": "object",
                "properties": {"name": {"const": tool.name}, arguments_key: tool.parameters},
                "required": ["name", arguments_key],
            }
            for tool in tools
        ]
    }
    try:
        return str(json_schema_to_gbnf(json.dumps(schema)))
    except Exception as exc:  # the converter raises plain exceptions on schemas it lacks
        raise InvalidJob(f"cannot build a grammar for these tool schemas ({exc})") from exc


def instructions(plan: ToolPlan) -> str:
    lines = [
        "You can call tools. To call one, answer with only a JSON object, nothing else:",
        '{"name": "<tool name>", "arguments": {<arguments>}}',
        "Otherwise answer normally, in plain text. Tools:",
    ]
    for tool in plan.tools:
        schema = json.dumps(tool.parameters.get("properties", {}), ensure_ascii=False)
        lines.append(f"- {tool.name}: {tool.description} Arguments: {schema}")
    if plan.forced:
        lines.append("Now call a tool.")
    return "\n".join(lines)


def prepare_messages(
    messages: list[dict[str, Any]],
    plan: ToolPlan | None,
    call_format: ToolCallFormat = JSON_OBJECT,
) -> list[dict[str, Any]]:
    """Messages the chat template can render. With our format: tool instructions joined
    to the system message, earlier calls as their JSON, tool results as user turns; with
    a native one, messages as the template expects them."""
    if call_format.native:
        return native_messages(messages)
    prepared: list[dict[str, Any]] = []
    for message in messages:
        role = message.get("role", "user")
        content = message.get("content") or ""
        if role == "assistant" and message.get("tool_calls"):
            calls = [
                {"name": call["function"]["name"], "arguments": call_arguments(call)}
                for call in message["tool_calls"]
            ]
            content = "\n".join(json.dumps(call, ensure_ascii=False) for call in calls)
        elif role == "tool":
            role = "user"
            content = f"Tool result ({message.get('name') or 'tool'}):\n{content}"
        prepared.append({"role": role, "content": content})
    if plan is not None:
        extra = instructions(plan)
        if prepared and prepared[0]["role"] == "system":
            prepared[0] = {"role": "system", "content": f"{prepared[0]['content']}\n\n{extra}"}
        else:
            prepared.insert(0, {"role": "system", "content": extra})
    return prepared


def parse_call(text: str, plan: ToolPlan) -> ToolCall:
    """The call in a grammar-constrained answer. `InvalidJob` if it was cut short."""
    try:
        data = json.loads(plan.call_format.call_json(text), strict=False)
    except json.JSONDecodeError as exc:
        raise InvalidJob(
            "the model wrote a broken tool call (if it was cut off, raise max_tokens)"
        ) from exc
    names = {tool.name for tool in plan.tools}
    if not isinstance(data, dict) or data.get("name") not in names:
        raise InvalidJob("the model produced a tool call for an unknown tool")
    arguments = data.get(plan.call_format.arguments_key)
    if not isinstance(arguments, dict):
        raise InvalidJob("the model's tool call has no arguments object")
    tool = next(tool for tool in plan.tools if tool.name == data["name"])
    arguments = clamp_numbers(arguments, tool.parameters)
    return ToolCall(call_id=f"call_{uuid.uuid4().hex[:16]}", name=data["name"], arguments=arguments)


def clamp_numbers(value: Any, schema: dict[str, Any]) -> Any:
    """Bring numbers into their schema's minimum/maximum.

    llama-cpp-python's schema-to-grammar converter does not encode numeric ranges, so
    the grammar guarantees a number where one is due but not its range; this closes
    that gap so every call validates.
    """
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        return {key: clamp_numbers(item, properties.get(key) or {}) for key, item in value.items()}
    if isinstance(value, list):
        return [clamp_numbers(item, schema.get("items") or {}) for item in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    step = 1 if schema.get("type") == "integer" else 0
    low = schema.get("minimum")
    if schema.get("exclusiveMinimum") is not None:
        low = schema["exclusiveMinimum"] + (step or 1e-9)
    high = schema.get("maximum")
    if schema.get("exclusiveMaximum") is not None:
        high = schema["exclusiveMaximum"] - (step or 1e-9)
    if low is not None and value < low:
        value = low
    if high is not None and value > high:
        value = high
    return value
