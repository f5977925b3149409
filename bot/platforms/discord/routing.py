"""Which Discord messages are for the bot, and who and where a request comes from."""

from __future__ import annotations

import re
from typing import Any

import discord

from bot.platforms.discord.config import DiscordSettings
from bot.requests import Quoted
from bot.scope import Role, Scope

PLATFORM = "discord"


def is_addressed(message: discord.Message, me: discord.abc.Snowflake) -> bool:
    """True for a DM, a mention, a reply to one of the bot's messages, or a message in a
    thread the bot started. Never for a bot (the bot itself included)."""
    if message.author.bot or message.author.id == me.id:
        return False
    if message.guild is None:
        return True
    if any(user.id == me.id for user in message.mentions):
        return True
    replied = replied_to(message)
    if replied is not None and replied.author.id == me.id:
        return True
    channel = message.channel
    return isinstance(channel, discord.Thread) and channel.owner_id == me.id


def quoted_in(message: discord.Message, me: discord.abc.Snowflake) -> Quoted | None:
    """The message `message` replies to, as context for the model; None when there is
    none, or it was deleted, or Discord did not send it along."""
    replied = replied_to(message)
    if replied is None:
        return None
    from_bot = replied.author.id == me.id
    text = replied.content if from_bot else strip_mentions(replied.content, me)
    return Quoted.bounded(text, replied.author.display_name, from_bot=from_bot)


def replied_to(message: discord.Message) -> discord.Message | None:
    """The message `message` replies to; None when there is none, or it was deleted, or
    Discord did not send it along (resolved, or in discord.py's cache)."""
    reference = message.reference
    replied = None if reference is None else reference.resolved or reference.cached_message
    return replied if isinstance(replied, discord.Message) else None


def strip_mentions(text: str, me: discord.abc.Snowflake) -> str:
    """The message without the bot's own mention ("<@123> hi" -> "hi")."""
    return re.sub(rf"<@!?{me.id}>", " ", text).strip()


def channel_allowed(channel: Any, settings: DiscordSettings) -> bool:
    """The allow-list (`BOT_DISCORD_CHANNELS`) applies to server channels; a thread follows
    its parent channel; DMs are always allowed."""
    if not settings.channels or isinstance(channel, discord.DMChannel | discord.GroupChannel):
        return True
    if channel is None:
        return False
    parent = getattr(channel, "parent_id", None) if isinstance(channel, discord.Thread) else None
    return int(parent or channel.id) in settings.channels


def destination_key(channel_id: int) -> str:
    """The delivery layer's pacing window: Discord limits message calls per channel."""
    return f"{PLATFORM}:{channel_id}"


def role_of(
    user: discord.User | discord.Member,
    settings: DiscordSettings,
    permissions: discord.Permissions | None = None,
) -> Role:
    """Operators by user id; admins by Manage Server (`permissions` where Discord resolved
    them, as in an interaction) or by a configured admin role (name or id)."""
    if user.id in settings.operators:
        return Role.OPERATOR
    if not isinstance(user, discord.Member):  # a DM: nobody else's settings to change
        return Role.USER
    allowed = permissions if permissions is not None else user.guild_permissions
    if allowed.manage_guild or allowed.administrator:
        return Role.ADMIN
    wanted = {name.lower() for name in settings.admin_roles}
    if any(role.name.lower() in wanted or str(role.id) in wanted for role in user.roles):
        return Role.ADMIN
    return Role.USER


def scope_for(
    user: discord.User | discord.Member,
    channel: Any,
    channel_id: int,
    guild_id: int | None,
    role: Role,
) -> Scope:
    """Server = guild (a DM is the user's own server), channel, and thread if any."""
    server = str(guild_id) if guild_id is not None else f"dm-{user.id}"
    thread: str | None = None
    if isinstance(channel, discord.Thread) and channel.parent_id is not None:
        thread, channel_id = str(channel.id), channel.parent_id
    return Scope(
        platform=PLATFORM,
        server_id=server,
        channel_id=str(channel_id),
        user_id=str(user.id),
        thread_id=thread,
        role=role,
        user_name=user.name,
        # A server's channels and threads are shared; a DM is the person's own.
        shared=guild_id is not None,
    )
