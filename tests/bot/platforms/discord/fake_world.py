"""The fake Discord's world: one server ("guild") with channels, threads, roles and
members (and a second, bare server for tests of shards), and the JSON objects Discord
sends for them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

TOKEN = "fake-bot-token"
BOT_ID = 900
GUILD_ID = 100
OWNER_ID = 101
GENERAL = 200  # a text channel
OTHER = 201  # another text channel
BOT_THREAD = 300  # a thread in GENERAL the bot started
USER_THREAD = 301  # a thread in GENERAL someone else started
ALICE, BOB, CAROL, OTHER_BOT = 501, 502, 503, 600
DM_ALICE = 10_000 + ALICE  # alice's DM channel with the bot
GUILD_CHANNELS = {GENERAL, OTHER, BOT_THREAD, USER_THREAD}
# A second server, on shard 1 of 2: a server's shard is (id >> 22) % shard count.
SECOND_GUILD_ID = (1 << 22) + GUILD_ID
SECOND_GENERAL = 250
ADMIN_ROLE, MODERATOR_ROLE = 110, 111

_VIEW_SEND_READ = (1 << 10) | (1 << 11) | (1 << 16)
_MANAGE_GUILD = 1 << 5
ALL_PERMISSIONS = (1 << 50) - 1
TIMESTAMP = "2026-01-01T00:00:00+00:00"
_NAMES = {
    BOT_ID: "commons",
    OWNER_ID: "owner",
    ALICE: "alice",
    BOB: "bob",
    CAROL: "carol",
    OTHER_BOT: "otherbot",
}
_ROLES = {ALICE: [], BOB: [ADMIN_ROLE], CAROL: [MODERATOR_ROLE], OWNER_ID: [], OTHER_BOT: []}


def user(user_id: int) -> dict[str, Any]:
    name = _NAMES.get(user_id, f"user{user_id}")
    return {
        "id": str(user_id),
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": None,
        "bot": user_id in (BOT_ID, OTHER_BOT),
    }


def member(user_id: int, *, with_user: bool = True) -> dict[str, Any]:
    found: dict[str, Any] = {
        "roles": [str(role) for role in _ROLES.get(user_id, [])],
        "joined_at": TIMESTAMP,
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": None,
    }
    if with_user:
        found["user"] = user(user_id)
    return found


def permissions_of(user_id: int) -> int:
    if user_id == OWNER_ID:
        return ALL_PERMISSIONS
    bits = _VIEW_SEND_READ
    if ADMIN_ROLE in _ROLES.get(user_id, []):
        bits |= _MANAGE_GUILD
    return bits


def _role(role_id: int, name: str, permissions: int) -> dict[str, Any]:
    return {
        "id": str(role_id),
        "name": name,
        "color": 0,
        "hoist": False,
        "position": 0 if role_id in (GUILD_ID, SECOND_GUILD_ID) else 1,
        "permissions": str(permissions),
        "managed": False,
        "mentionable": False,
        "flags": 0,
    }


def text_channel(channel_id: int, name: str, guild_id: int = GUILD_ID) -> dict[str, Any]:
    return {
        "id": str(channel_id),
        "type": 0,
        "guild_id": str(guild_id),
        "name": name,
        "position": 0,
        "permission_overwrites": [],
        "nsfw": False,
        "parent_id": None,
        "topic": None,
        "last_message_id": None,
        "rate_limit_per_user": 0,
    }


def thread(thread_id: int, owner: int) -> dict[str, Any]:
    return {
        "id": str(thread_id),
        "type": 11,
        "guild_id": str(GUILD_ID),
        "parent_id": str(GENERAL),
        "owner_id": str(owner),
        "name": f"thread {thread_id}",
        "member_count": 2,
        "message_count": 0,
        "rate_limit_per_user": 0,
        "thread_metadata": {
            "archived": False,
            "auto_archive_duration": 1440,
            "archive_timestamp": TIMESTAMP,
            "locked": False,
        },
    }


def second_guild() -> dict[str, Any]:
    """Another server with one text channel and no threads."""
    return {
        **guild(),
        "id": str(SECOND_GUILD_ID),
        "name": "Second Server",
        "roles": [_role(SECOND_GUILD_ID, "@everyone", _VIEW_SEND_READ)],
        "channels": [text_channel(SECOND_GENERAL, "general", SECOND_GUILD_ID)],
        "threads": [],
    }


def guild(extra_channels: Iterable[int] = ()) -> dict[str, Any]:
    return {
        "id": str(GUILD_ID),
        "name": "Fake Server",
        "owner_id": str(OWNER_ID),
        "icon": None,
        "unavailable": False,
        "large": False,
        "member_count": len(_ROLES) + 1,
        "joined_at": TIMESTAMP,
        "roles": [
            _role(GUILD_ID, "@everyone", _VIEW_SEND_READ),
            _role(ADMIN_ROLE, "Admins", _MANAGE_GUILD),
            _role(MODERATOR_ROLE, "Moderators", 0),
        ],
        "channels": [
            text_channel(GENERAL, "general"),
            text_channel(OTHER, "other"),
            *(text_channel(channel, f"channel-{channel}") for channel in extra_channels),
        ],
        "threads": [thread(BOT_THREAD, BOT_ID), thread(USER_THREAD, ALICE)],
        "members": [member(BOT_ID)],
        "emojis": [],
        "stickers": [],
        "features": [],
        "voice_states": [],
        "presences": [],
        "stage_instances": [],
        "guild_scheduled_events": [],
        "soundboard_sounds": [],
        "premium_tier": 0,
        "preferred_locale": "en-US",
        "verification_level": 0,
        "default_message_notifications": 0,
        "explicit_content_filter": 0,
        "mfa_level": 0,
        "nsfw_level": 0,
        "system_channel_flags": 0,
        "afk_timeout": 300,
    }
