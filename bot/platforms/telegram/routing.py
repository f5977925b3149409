"""Which Telegram messages are for the bot, and what they ask.

In a private chat every message is for the bot. In a group the bot answers a message
that mentions it, replies to one of its messages, or starts with one of its commands
(`/ask` or `/ask@ThisBot`; a command addressed to another bot is not ours). With privacy
mode on, Telegram only delivers such messages anyway; with it off, the others are seen
and ignored here.
"""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Document, Message, MessageEntity
from telegram.constants import ChatType

from bot.commands.registry import REGISTRY
from bot.requests import Quoted

# Commands the bot answers without an @mention in groups: the registry's.
COMMANDS = frozenset(
    "/" + name for spec in REGISTRY.specs for name in (spec.path[0], *spec.aliases)
)


@dataclass(frozen=True)
class Request:
    """What one message asks of the bot."""

    # The text for the chat service (mentions of the bot removed), or what was typed
    # after the command's name.
    text: str
    command: str | None = None  # "/name", lower-case, without "@bot"
    # A document to add to the community's documents ("/docs add" on or replying to it).
    document: Document | None = None


def is_private(message: Message) -> bool:
    return message.chat.type == ChatType.PRIVATE


def thread_of(message: Message) -> int | None:
    """The forum topic a message belongs to (None outside topics: the "General" topic and
    reply threads of ordinary groups share the chat's conversation)."""
    return message.message_thread_id if message.is_topic_message else None


def read_request(message: Message, bot_username: str, bot_id: int) -> Request | None:
    """The request `message` makes of the bot, or None when it is not addressed to it."""
    if message.text is not None:
        text, entities = message.text, message.parse_entities()
    elif message.caption is not None:
        text, entities = message.caption, message.parse_caption_entities()
    elif message.document is not None and is_private(message):
        text, entities = "", {}
    else:
        return None
    command = _leading_command(entities)
    if command is not None:
        name, _, target = command.partition("@")
        name = name.lower()
        if target and target.lower() != bot_username.lower():
            return None  # "/help@OtherBot"
        if not target and name not in COMMANDS and not is_private(message):
            return None  # perhaps another bot's command
        rest = text[len(command) :].strip()
        return Request(
            text=rest,
            command=name,
            document=_document_to_add(message, name, rest),
        )
    mention = f"@{bot_username}".lower()
    mentions = [
        (entity, value)
        for entity, value in entities.items()
        if (entity.type == MessageEntity.MENTION and value.lower() == mention)
        or (entity.type == MessageEntity.TEXT_MENTION and entity.user and entity.user.id == bot_id)
    ]
    if not (is_private(message) or mentions or _replies_to_bot(message, bot_id)):
        return None
    for _, value in mentions:
        if value.startswith("@"):
            text = text.replace(value, "")
    return Request(text=text.strip())


def quoted_in(message: Message, bot_id: int) -> Quoted | None:
    """The message `message` replies to (or the part of it quoted), as context for the
    model. None without a reply, for a reply to a topic's first message (every message of
    a topic replies to it), or when the replied message was deleted or has no text."""
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        return None
    author = replied.from_user
    from_bot = author is not None and author.id == bot_id
    name = (
        author.full_name
        if author is not None
        else (replied.sender_chat.title or "" if replied.sender_chat else "")
    )
    quote = message.quote
    if quote is not None and quote.text:
        return Quoted.bounded(quote.text, name, from_bot=from_bot, partial=True)
    return Quoted.bounded(replied.text or replied.caption or "", name, from_bot=from_bot)


def _leading_command(entities: dict[MessageEntity, str]) -> str | None:
    for entity, value in entities.items():
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            return value
    return None


def _replies_to_bot(message: Message, bot_id: int) -> bool:
    replied = message.reply_to_message
    if replied is None or replied.forum_topic_created is not None:
        # In a topic, every message "replies" to the topic's first message.
        return False
    return replied.from_user is not None and replied.from_user.id == bot_id


def _document_to_add(message: Message, command: str, rest: str) -> Document | None:
    if command != "/docs" or rest.lower() != "add":
        return None
    if message.document is not None:
        return message.document
    replied = message.reply_to_message
    return replied.document if replied is not None else None
