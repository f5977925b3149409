"""The delivery layer's `Transport` for one Telegram chat (or forum topic).

The model writes Markdown; Telegram's own Markdown dialects reject much of what models
write, so each message is converted with `telegramify-markdown` into plain text plus
message entities, which cannot fail to parse. Lengths are measured as Telegram does, in
UTF-16 code units. PTB's errors are translated into the delivery layer's at this boundary.
"""

from __future__ import annotations

import functools
import itertools
import warnings
from datetime import timedelta

import telegramify_markdown
from telegram import Bot, LinkPreviewOptions, MessageEntity, ReplyParameters
from telegram.constants import ChatAction, MessageLimit
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)
from telegram.warnings import PTBDeprecationWarning

from bot.delivery.transport import (
    DeliveryError,
    DeliveryLimits,
    DestinationGone,
    FormattingRejected,
    MessageGone,
    RetryLater,
    Transport,
)

# Telegram: about 20 messages a minute in a group, and about one a second in a private
# chat (short bursts are tolerated); an edit counts as a message.
GROUP_LIMITS = DeliveryLimits(max_length=MessageLimit.MAX_TEXT_LENGTH)
PRIVATE_LIMITS = DeliveryLimits(
    max_length=MessageLimit.MAX_TEXT_LENGTH, channel_messages=60, channel_window_s=60.0
)
# ... and about 30 messages a second for the whole bot, across all its chats.
BOT_MESSAGES_PER_S = 30

_NO_PREVIEW = LinkPreviewOptions(is_disabled=True)
# How long to wait after a timeout or a server error before the next call.
_TRANSIENT_RETRY_S = 2.0
# Draft ids only need to be distinct between the replies of one chat.
_draft_ids = itertools.count(1)

# Substrings of Telegram's 400 descriptions, lower-cased.
_NOT_MODIFIED = "message is not modified"
_FORMATTING = ("can't parse entities", "entity", "entities")
_MESSAGE_GONE = ("message to edit not found", "message can't be edited", "message_id_invalid")
_CHAT_GONE = (
    "chat not found",
    "bot was kicked",
    "not a member",
    "have no rights to send",
    "not enough rights",
    "topic_closed",
    "topic_deleted",
    "message thread not found",
    "chat_write_forbidden",
)


def render(markdown: str) -> tuple[str, list[MessageEntity]]:
    """`markdown` as Telegram text plus entities (offsets in UTF-16 code units)."""
    text, entities = telegramify_markdown.convert(markdown)
    return text, [
        MessageEntity(
            type=entity.type,
            offset=entity.offset,
            length=entity.length,
            url=entity.url,
            language=entity.language,
        )
        for entity in entities
    ]


def utf16_length(text: str) -> int:
    return telegramify_markdown.utf16_len(text)


@functools.lru_cache(maxsize=512)
def _measure(text: str) -> int:
    # The converted text is what Telegram counts; the raw text is what a plain resend
    # (after a formatting refusal) carries: a piece must fit both ways. Cached because a
    # streamed reply measures its finished pieces again at every update.
    return max(utf16_length(render(text)[0]), utf16_length(text))


def retry_after_s(exc: RetryAfter) -> float:
    with warnings.catch_warnings():
        # PTB warns that `retry_after` becomes a timedelta; either form is handled here.
        warnings.simplefilter("ignore", PTBDeprecationWarning)
        value = exc.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


def translate(exc: TelegramError) -> DeliveryError:
    """The delivery layer's name for a failed Bot API call."""
    if isinstance(exc, RetryAfter):
        return RetryLater(retry_after_s(exc))
    if isinstance(exc, Forbidden | ChatMigrated):
        return DestinationGone(exc.message)
    description = exc.message.lower()
    if isinstance(exc, BadRequest):
        if any(part in description for part in _MESSAGE_GONE):
            return MessageGone(exc.message)
        if any(part in description for part in _CHAT_GONE):
            return DestinationGone(exc.message)
        if any(part in description for part in _FORMATTING):
            return FormattingRejected(exc.message)
        return DeliveryError(exc.message)
    if isinstance(exc, NetworkError):
        # A timeout or a 5xx from the Bot API: transient, so try again shortly.
        return RetryLater(_TRANSIENT_RETRY_S)
    return DeliveryError(exc.message)


class TelegramTransport(Transport[int]):
    """Sends to one chat, or one forum topic of it. A handle is a message id."""

    def __init__(
        self,
        bot: Bot,
        chat_id: int,
        thread_id: int | None,
        *,
        private: bool,
        reply_to: int | None = None,
    ) -> None:
        self._bot = bot
        self._chat_id = chat_id
        self._thread_id = thread_id
        self._private = private
        # The reply's first message answers this one (in a busy group: which question).
        self._reply_to = reply_to
        self.limits = PRIVATE_LIMITS if private else GROUP_LIMITS
        self._draft_id = next(_draft_ids)

    def rendered_length(self, text: str) -> int:
        return _measure(text)

    @property
    def supports_drafts(self) -> bool:
        return self._private

    @staticmethod
    def _content(text: str, plain: bool) -> tuple[str, list[MessageEntity] | None]:
        if plain:
            return text, None
        converted, entities = render(text)
        if not converted.strip():  # e.g. an empty code block: nothing left to show
            return text, None
        return converted, entities

    async def send(self, text: str, *, plain: bool = False, nonce: str = "") -> int:
        # The Bot API has no idempotent send: `nonce` cannot be used.
        content, entities = self._content(text, plain)
        try:
            message = await self._bot.send_message(
                self._chat_id,
                content,
                entities=entities,
                message_thread_id=self._thread_id,
                link_preview_options=_NO_PREVIEW,
                reply_parameters=self._reply_parameters(),
            )
        except TelegramError as exc:
            raise translate(exc) from exc
        self._reply_to = None
        return message.message_id

    def _reply_parameters(self) -> ReplyParameters | None:
        if self._reply_to is None:
            return None
        # Still answer if the question was deleted meanwhile.
        return ReplyParameters(self._reply_to, allow_sending_without_reply=True)

    def handle_of(self, ref: str) -> int:
        return int(ref)

    async def edit(self, handle: int, text: str, *, plain: bool = False) -> None:
        content, entities = self._content(text, plain)
        try:
            await self._bot.edit_message_text(
                content,
                chat_id=self._chat_id,
                message_id=handle,
                entities=entities,
                link_preview_options=_NO_PREVIEW,
            )
        except BadRequest as exc:
            if _NOT_MODIFIED in exc.message.lower():
                return
            raise translate(exc) from exc
        except TelegramError as exc:
            raise translate(exc) from exc

    async def typing(self) -> None:
        try:
            await self._bot.send_chat_action(
                self._chat_id, ChatAction.TYPING, message_thread_id=self._thread_id
            )
        except TelegramError as exc:
            raise translate(exc) from exc

    async def draft(self, text: str) -> None:
        content, entities = self._content(text, plain=False)
        try:
            await self._bot.send_message_draft(
                self._chat_id,
                self._draft_id,
                content,
                message_thread_id=self._thread_id,
                entities=entities,
            )
        except TelegramError as exc:
            raise translate(exc) from exc
