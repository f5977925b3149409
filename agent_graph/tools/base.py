"""What every agent tool is: a name, a description, a pydantic argument model, a timeout,
and one async `run`.

The model only ever chooses a tool and its arguments. What a tool may touch (which
scope's documents, which search backend) comes from the `ToolContext` the graph builds
from the turn's configuration, never from the model's arguments, so text in a
retrieved document cannot widen what a tool reaches.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel

ArgsT = TypeVar("ArgsT", bound=BaseModel)


@dataclass(frozen=True)
class ToolContext:
    """What the graph, not the model, decides for a tool call."""

    document_scope: str = ""  # whose documents `search_documents` reads; "" = none


class AgentTool(ABC, Generic[ArgsT]):
    """One tool. `run` returns the text the model reads, or raises ToolError."""

    name: ClassVar[str]
    description: ClassVar[str]
    args_model: type[ArgsT]
    timeout_s: float = 10.0

    @abstractmethod
    async def run(self, args: ArgsT, context: ToolContext) -> str:
        """Do the call; ToolError (with text the model can act on) when it cannot."""

    def available(self, context: ToolContext) -> bool:
        """Whether this tool can be offered in `context` (e.g. a scope to search)."""
        return True

    def status(self, args: dict[str, Any]) -> str:
        """A short line for people watching: what the tool is doing with these arguments."""
        if not args:
            return ""
        return str(next(iter(args.values())))[:120]

    def schema(self) -> dict[str, Any]:
        """The tool in OpenAI function format, as `BaseChatModel.bind_tools` accepts it."""
        parameters = self.args_model.model_json_schema()
        parameters.pop("title", None)
        parameters.pop("description", None)
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": parameters,
            },
        }
