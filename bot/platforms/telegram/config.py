"""Telegram settings (environment prefix ``BOT_TELEGRAM_``), parsed once by `bot.config`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.platforms.env_values import split_list

# The public Bot API serves downloads of at most 20 MB; a self-hosted Bot API server
# (`BOT_TELEGRAM_BASE_URL`) has no such limit.
PUBLIC_API_URL = "https://api.telegram.org/bot"
PUBLIC_FILE_URL = "https://api.telegram.org/file/bot"
PUBLIC_DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024


class TelegramSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOT_TELEGRAM_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    token: SecretStr | None = Field(None, description="the bot's token from @BotFather")
    base_url: str = Field(
        PUBLIC_API_URL, description="Bot API base URL (the token is appended); self-hosted servers"
    )
    base_file_url: str = Field(
        PUBLIC_FILE_URL, description="Bot API file download URL (the token is appended)"
    )
    operators: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="user ids that may change the global settings, e.g. [12345, 67890]",
    )
    # Long polling: how long one getUpdates call waits on the server for updates.
    poll_timeout_s: int = Field(30, ge=0, le=60)
    # Webhook instead of long polling when set: the public HTTPS URL Telegram posts to.
    webhook_url: str | None = None
    webhook_listen: str = "0.0.0.0"
    webhook_port: int = Field(8443, ge=1, le=65535)
    webhook_secret: SecretStr | None = Field(
        None, description="checked on every webhook request (X-Telegram-Bot-Api-Secret-Token)"
    )
    # On stop: how long replies in flight may take to deliver their final text.
    shutdown_grace_s: float = Field(10.0, ge=0.0)
    # How long a chat member's admin status is trusted before asking Telegram again.
    admin_cache_s: float = Field(60.0, ge=0.0)

    @field_validator("token", "webhook_url", "webhook_secret", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        # docker-compose passes an unset variable as an empty string.
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("base_url", "base_file_url", mode="before")
    @classmethod
    def _empty_is_public(cls, value: object, info: ValidationInfo) -> object:
        if isinstance(value, str) and not value.strip():
            return PUBLIC_API_URL if info.field_name == "base_url" else PUBLIC_FILE_URL
        return value

    @field_validator("operators", mode="before")
    @classmethod
    def _parse_operators(cls, value: object) -> object:
        return split_list(value)

    @property
    def self_hosted(self) -> bool:
        return self.base_url.rstrip("/") != PUBLIC_API_URL

    @property
    def download_limit_bytes(self) -> int | None:
        """The Bot API's file download limit; None for a self-hosted server (no limit)."""
        return None if self.self_hosted else PUBLIC_DOWNLOAD_LIMIT_BYTES
