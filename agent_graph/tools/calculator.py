"""The `calculator` tool: small models get arithmetic wrong, so they hand it to this.

The evaluation itself is `agent_graph.tools.arithmetic` (an AST whitelist with bounds);
this module is the tool's face to the model: its name, description and argument.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, Field

from agent_graph.tools.arithmetic import MAX_EXPRESSION_CHARS, evaluate, format_number
from agent_graph.tools.base import AgentTool, ToolContext


class CalculatorArgs(BaseModel):
    expression: str = Field(
        description="an arithmetic expression, e.g. '37 * 91 + 5' or 'sqrt(2) * pi'",
        max_length=MAX_EXPRESSION_CHARS,
    )


class Calculator(AgentTool[CalculatorArgs]):
    name: ClassVar[str] = "calculator"
    description: ClassVar[str] = (
        "Evaluate an arithmetic expression exactly. Supports + - * / // % ** and "
        "parentheses, sqrt, log, exp, sin, cos, tan, floor, ceil, round, factorial, pi, e. "
        "Use it for any calculation instead of computing in your head."
    )
    args_model = CalculatorArgs
    timeout_s = 2.0

    async def run(self, args: CalculatorArgs, context: ToolContext) -> str:
        # Bounded in arithmetic.py, so fast enough to run on the event loop.
        return f"{args.expression.strip()} = {format_number(evaluate(args.expression))}"
