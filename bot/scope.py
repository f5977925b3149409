"""Who is asking and where: the platform-neutral identity of a request."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum


class Role(IntEnum):
    """What a person may change. Ordered: a higher role may do all a lower one may."""

    USER = 0  # may change settings of their own conversation
    ADMIN = 1  # a server/chat admin: may change channel- and server-wide settings
    OPERATOR = 2  # runs the bot (the local terminal user): may change the global defaults


class SettingLevel(StrEnum):
    """Where a setting is stored; resolution looks from the narrowest to the widest."""

    CONVERSATION = "conversation"
    CHANNEL = "channel"
    SERVER = "server"
    GLOBAL = "global"


# Narrowest first: the order in which a setting's value is looked up.
LEVEL_CHAIN: tuple[SettingLevel, ...] = (
    SettingLevel.CONVERSATION,
    SettingLevel.CHANNEL,
    SettingLevel.SERVER,
    SettingLevel.GLOBAL,
)

# The least role that may change settings at each level, in a place of one's own.
REQUIRED_ROLE: dict[SettingLevel, Role] = {
    SettingLevel.CONVERSATION: Role.USER,
    SettingLevel.CHANNEL: Role.ADMIN,
    SettingLevel.SERVER: Role.ADMIN,
    SettingLevel.GLOBAL: Role.OPERATOR,
}


def required_role(level: SettingLevel, shared: bool) -> Role:
    """The least role that may change `level`. Where several people share the conversation
    (a group, a server channel), its level applies to all of them: admins only."""
    if shared and level is SettingLevel.CONVERSATION:
        return Role.ADMIN
    return REQUIRED_ROLE[level]


@dataclass(frozen=True)
class Scope:
    """A request's place: platform, server (Discord guild, Telegram chat), channel, thread, user.

    A conversation is one channel, or one thread inside it: everyone there shares its
    history, as they share what they see on screen.
    """

    platform: str
    server_id: str
    channel_id: str
    user_id: str
    thread_id: str | None = None
    role: Role = Role.USER
    user_name: str = ""
    # Several people share this conversation (a group, a forum topic, a server channel or
    # thread): what changes it changes it for all of them. False in a private chat or DM.
    shared: bool = False

    @property
    def place(self) -> str:
        """How the audit log names where a change was made."""
        thread = f"/{self.thread_id}" if self.thread_id else ""
        return f"{self.platform}:{self.server_id}/{self.channel_id}{thread}"

    @property
    def conversation_key(self) -> str:
        return f"{self.platform}:{self.server_id}:{self.channel_id}:{self.thread_id or '-'}"

    @property
    def server_key(self) -> str:
        return f"{self.platform}:{self.server_id}"

    @property
    def user_key(self) -> str:
        return f"{self.platform}:user:{self.user_id}"

    @property
    def actor(self) -> str:
        """How the audit log names this person."""
        name = f" ({self.user_name})" if self.user_name else ""
        return f"{self.platform}:{self.user_id}{name}"

    def level_key(self, level: SettingLevel) -> str:
        """The storage key of this scope's settings at `level`."""
        if level is SettingLevel.CONVERSATION:
            return f"conversation:{self.conversation_key}"
        if level is SettingLevel.CHANNEL:
            return f"channel:{self.platform}:{self.server_id}:{self.channel_id}"
        if level is SettingLevel.SERVER:
            return f"server:{self.server_key}"
        return "global"
