"""What part of a stored conversation the model sees, and what is kept at all.

Chat templates and tool-calling APIs reject an assistant tool call without its result
(or a result without its call), so the unit of trimming is never a single message:
history is cut into turns (a person's message and everything the agent did for it),
and inside a turn into steps (a tool-calling message with its results). The newest
units that fit the token budget are kept, oldest dropped first, and the kept part
always starts on a person's message.
"""

from __future__ import annotations

from collections.abc import Sequence

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.messages.utils import count_tokens_approximately

NOT_RUN = "not run: the answer was stopped before this tool ran"


def split_turns(messages: Sequence[BaseMessage]) -> list[list[BaseMessage]]:
    """Messages grouped by turn, each group starting at a HumanMessage.

    Messages before the first HumanMessage (none in practice) form a group of their own.
    """
    turns: list[list[BaseMessage]] = []
    for message in messages:
        if isinstance(message, HumanMessage) or not turns:
            turns.append([message])
        else:
            turns[-1].append(message)
    return turns


def _split_steps(turn_body: Sequence[BaseMessage]) -> list[list[BaseMessage]]:
    steps: list[list[BaseMessage]] = []
    for message in turn_body:
        if isinstance(message, ToolMessage) and steps:
            steps[-1].append(message)
        else:
            steps.append([message])
    return steps


def _tokens(messages: Sequence[BaseMessage]) -> int:
    return count_tokens_approximately(messages)


def fit_history(messages: Sequence[BaseMessage], token_budget: int) -> list[BaseMessage]:
    """The newest whole turns that fit `token_budget`, starting on a human turn.

    When even the newest turn does not fit, it keeps the person's message and the newest
    whole tool steps that fit; the person's message is kept even when it alone is over.
    """
    turns = split_turns(messages)
    if turns and not isinstance(turns[0][0], HumanMessage):
        turns = turns[1:]
    if not turns:
        return []
    kept: list[list[BaseMessage]] = []
    used = 0
    for turn in reversed(turns):
        cost = _tokens(turn)
        if used + cost > token_budget:
            break
        kept.append(turn)
        used += cost
    if kept:
        return [message for turn in reversed(kept) for message in turn]
    newest = turns[-1]
    question, steps = newest[0], _split_steps(newest[1:])
    used = _tokens([question])
    tail: list[list[BaseMessage]] = []
    for step in reversed(steps):
        cost = _tokens(step)
        if used + cost > token_budget:
            break
        tail.append(step)
        used += cost
    return [question, *(message for step in reversed(tail) for message in step)]


def repair_tool_pairs(messages: Sequence[BaseMessage]) -> list[BaseMessage]:
    """`messages` where every tool call has a result and every result a call.

    A turn stopped while a tool ran leaves a call without a result in the store; the
    model is shown a "not run" result for it instead. Results without a call are dropped.
    """
    repaired: list[BaseMessage] = []
    open_calls: dict[str, str] = {}  # id -> tool name, for the latest tool-calling message

    def close_open_calls() -> None:
        for call_id, name in open_calls.items():
            repaired.append(ToolMessage(NOT_RUN, tool_call_id=call_id, name=name, status="error"))
        open_calls.clear()

    for message in messages:
        if isinstance(message, ToolMessage):
            if open_calls.pop(message.tool_call_id, None) is not None:
                repaired.append(message)
            continue
        close_open_calls()
        repaired.append(message)
        if isinstance(message, AIMessage):
            open_calls.update({call["id"] or "": call["name"] for call in message.tool_calls})
    close_open_calls()
    return repaired


def overflow(messages: Sequence[BaseMessage], max_messages: int) -> list[BaseMessage]:
    """The oldest whole turns to delete so that at most `max_messages` stay stored.

    The newest turn is never deleted, however long it is.
    """
    excess = len(messages) - max_messages
    if excess <= 0:
        return []
    dropped: list[BaseMessage] = []
    for turn in split_turns(messages)[:-1]:
        if len(dropped) >= excess:
            break
        dropped.extend(turn)
    return dropped
