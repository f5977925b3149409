"""Discord attachments as the core's neutral uploads, and finding the clip to transcribe.

Apart from the adapter because both of its ways in use them: a message's attached file
or voice message, and a slash command's attachment option.
"""

from __future__ import annotations

import discord

from bot.requests import Upload


def upload_of(attachment: discord.Attachment) -> Upload:
    return Upload(
        filename=attachment.filename,
        size_bytes=attachment.size,
        content_type=attachment.content_type,
        download=attachment.read,
        duration_s=attachment.duration,  # voice messages announce their length
    )


def clip_in(message: discord.Message | None) -> discord.Attachment | None:
    """The first voice message or audio file attached to `message`."""
    if message is None:
        return None
    for attachment in message.attachments:
        if attachment.is_voice_message() or (attachment.content_type or "").startswith("audio/"):
            return attachment
    return None
