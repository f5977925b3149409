"""Discord settings (environment prefix ``BOT_DISCORD_``), parsed once by `bot.config`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.platforms.env_values import split_list

PUBLIC_API_URL = "https://discord.com/api/v10"


class DiscordSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOT_DISCORD_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    token: SecretStr | None = Field(None, description="the bot's token (developer portal, Bot)")
    api_url: str = Field(
        PUBLIC_API_URL,
        description="REST base URL; the gateway address is asked of it (GET /gateway/bot)",
    )
    guild_id: int | None = Field(
        None, description="sync slash commands to this server only (instant); unset: globally"
    )
    channels: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="channel ids the bot answers in (threads follow their channel); empty: all",
    )
    admin_roles: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="role names or ids whose members are admins (besides Manage Server)",
    )
    operators: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="user ids that may change the global settings"
    )
    message_content: bool = Field(
        True,
        description="request the privileged Message Content intent; off: mentions, DMs and "
        "slash commands only",
    )
    # On stop: how long replies in flight may take to deliver their final text.
    shutdown_grace_s: float = Field(10.0, ge=0.0)
    shard_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="the gateway shards this process serves (`0, 1`); empty: all of them",
    )
    shard_count: int | None = Field(
        None,
        ge=1,
        description="how many shards the bot has in all; unset: the number Discord recommends",
    )

    @field_validator("channels", "admin_roles", "operators", "shard_ids", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        return split_list(value)

    @model_validator(mode="after")
    def _check_shards(self) -> DiscordSettings:
        # discord.py accepts any ids and fails only once connected (or never, for an id
        # nobody serves); say what is wrong before anything starts.
        if not self.shard_ids:
            return self
        if self.shard_count is None:
            raise ValueError(
                "BOT_DISCORD_SHARD_IDS needs BOT_DISCORD_SHARD_COUNT: the number of shards "
                "all processes of the bot serve together"
            )
        outside = sorted({i for i in self.shard_ids if not 0 <= i < self.shard_count})
        if outside:
            raise ValueError(
                f"BOT_DISCORD_SHARD_IDS {outside} are outside 0..{self.shard_count - 1} "
                f"(BOT_DISCORD_SHARD_COUNT={self.shard_count})"
            )
        if len(set(self.shard_ids)) != len(self.shard_ids):
            raise ValueError("BOT_DISCORD_SHARD_IDS lists a shard twice")
        return self
