"""Discord settings (environment prefix ``BOT_DISCORD_``), parsed once by `bot.config`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator
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

    @field_validator("channels", "admin_roles", "operators", mode="before")
    @classmethod
    def _parse_list(cls, value: object) -> object:
        return split_list(value)
