"""Running one agent turn in a test: the answer's text and the tool events, apart."""

from __future__ import annotations

from agent_graph.agent import Agent, TextDelta, ToolEvent, TurnSettings

CALCULATOR_TURN = TurnSettings(
    "Be brief.", {"temperature": 0.7}, tools=("calculator",), document_scope="s"
)


async def run(
    agent: Agent, text: str, turn: TurnSettings = CALCULATOR_TURN
) -> tuple[str, list[ToolEvent]]:
    answer, events = "", []
    async for event in agent.stream_reply("t", text, turn):
        if isinstance(event, TextDelta):
            answer += event.text
        elif isinstance(event, ToolEvent):
            events.append(event)
    return answer, events
