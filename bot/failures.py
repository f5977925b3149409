"""Turning any failure during a request into one line for the person who asked.

Known failures carry their own message (what happened, what to do). Anything else is
logged with its traceback for the operator and shown as a generic apology, so one bad
request never takes the process down.
"""

from __future__ import annotations

import logging

from redis.exceptions import RedisError

from agent_graph.errors import AgentError
from bot.errors import BotError
from inference.errors import InferenceError
from storage.errors import StorageError

log = logging.getLogger(__name__)

STORAGE_DOWN = "The bot's storage is not answering right now; try again in a moment."
GENERIC = "Something went wrong while answering; please try again."


def describe_failure(exc: Exception, context: str) -> str:
    """The message to show for `exc`; unexpected failures are logged with `context`."""
    if isinstance(exc, BotError | InferenceError | AgentError | StorageError):
        return str(exc)
    if isinstance(exc, RedisError):
        log.warning("Redis failed during %s: %s", context, exc)
        return STORAGE_DOWN
    log.exception("unexpected failure during %s", context)
    return GENERIC
