"""What the delivery layer needs from a platform: a few calls and a few limits.

A platform module (Telegram, Discord) implements `Transport` for one destination (a
chat, a channel, a thread) by calling its library, and translates that library's
errors into the `DeliveryError` family below at the boundary. Everything else about
delivering a streamed reply (pacing, splitting, retry-after, drafts, failures) is
platform-neutral and lives in `bot.delivery.stream`.

DeliveryError             base class
├── RetryLater            the platform asked us to wait `retry_after_s` (HTTP 429)
├── FormattingRejected    the platform refused the rendered formatting: send it plain
├── MessageGone           the message being edited was deleted: send a new one
└── DestinationGone       the chat or channel is no longer reachable (bot removed,
                          access lost): nothing more can be delivered there
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

# An opaque reference to a sent message (a message id, a library object ...).
Handle = TypeVar("Handle")


class DeliveryError(Exception):
    """A platform call did not deliver; the subclass says what to do about it."""


class RetryLater(DeliveryError):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__(f"rate limited: retry after {retry_after_s:.1f} s")
        self.retry_after_s = retry_after_s


class FormattingRejected(DeliveryError):
    pass


class MessageGone(DeliveryError):
    pass


class DestinationGone(DeliveryError):
    pass


@dataclass(frozen=True)
class DeliveryLimits:
    """One platform's limits, as the delivery layer applies them.

    `max_length` is measured by `Transport.rendered_length` (Telegram counts UTF-16 code
    units of the text left after formatting; Discord counts characters of the Markdown).
    `channel_messages` sends or edits per `channel_window_s` is the budget one destination
    gets; `edit_interval_s` is the least time between two updates of one message.
    """

    max_length: int
    edit_interval_s: float = 1.0
    channel_messages: int = 20
    channel_window_s: float = 60.0
    typing_interval_s: float = 4.5
    # Updates of a live message keep this many of the window's calls free, so the final
    # text of a reply is never the one that has to wait for a whole window.
    reserve_for_final: int = 1


class Transport(ABC, Generic[Handle]):
    """Sends, edits and shows "typing" in one destination. Raises only `DeliveryError`s
    (translated from the platform library's own errors)."""

    limits: DeliveryLimits

    @abstractmethod
    async def send(self, text: str, *, plain: bool = False, nonce: str = "") -> Handle:
        """Post a new message. `text` is Markdown; `plain` means send it without
        formatting (after the platform rejected the formatted version). `nonce` is the
        same when a process that took a reply over sends the same message again: a
        platform that can (Discord) then creates it once."""

    @abstractmethod
    async def edit(self, handle: Handle, text: str, *, plain: bool = False) -> None:
        """Replace a message's text. An edit to the same text is not an error."""

    @abstractmethod
    async def typing(self) -> None:
        """Show that a reply is being written (it fades by itself after a few seconds)."""

    def rendered_length(self, text: str) -> int:
        """How long `text` is as the platform measures it against `limits.max_length`."""
        return len(text)

    def message_ref(self, handle: Handle) -> str:
        """`handle` written down, for another process to edit that message
        (`handle_of`): a reply's journal keeps these."""
        return str(handle)

    def handle_of(self, ref: str) -> Handle:
        """The handle of a message this destination sent, from its `message_ref`."""
        raise NotImplementedError("this transport cannot edit a message it did not send")

    @property
    def supports_drafts(self) -> bool:
        """True where a reply in progress can be shown as a draft preview (Telegram
        private chats) instead of a message that is edited."""
        return False

    async def draft(self, text: str) -> None:
        """Show `text` as the live draft of the reply being written."""
        raise NotImplementedError("this transport has no drafts")
