"""Errors the chat service shows to users. Each message says what happened and what to do.

BotError                  base class; `str(exc)` is the line shown to the user
├── InvalidRequest        empty or oversized message, unknown command
├── SettingError          unknown setting key or a value out of range
├── PermissionDenied      the user's role may not do this
├── RateLimited           a per-minute quota is used up; carries retry_after_s
├── BudgetExhausted       a daily token budget is used up
├── ConversationBusy      too many questions are already waiting in this conversation
├── GenerationFailed      the model could not answer (the pool is down, busy, ...)
└── Restarting            the bot is stopping: the request was not started
"""

from __future__ import annotations


class BotError(Exception):
    """A failure whose message is safe and useful to show to the person who asked."""


class InvalidRequest(BotError):
    pass


class SettingError(BotError):
    pass


class PermissionDenied(BotError):
    pass


class RateLimited(BotError):
    def __init__(self, message: str, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BudgetExhausted(BotError):
    pass


class ConversationBusy(BotError):
    pass


class GenerationFailed(BotError):
    pass


class Restarting(BotError):
    pass
