"""Typed configuration, parsed once from the environment (prefix ``BOT_``) and ``.env``.

Every part of the app receives the values it needs from one `Settings` object built in
`bot.app`; nothing else reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.platforms.discord.config import DiscordSettings
from bot.platforms.telegram.config import TelegramSettings

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]


class SamplingDefaults(BaseSettings):
    """Global sampling defaults; admins override them per server, channel or conversation."""

    model_config = SettingsConfigDict(env_prefix="BOT_DEFAULT_", extra="ignore")

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.95, ge=0.0, le=1.0)
    top_k: int = Field(40, ge=0, le=1000)
    min_p: float = Field(0.05, ge=0.0, le=1.0)
    repeat_penalty: float = Field(1.1, ge=0.5, le=2.0)
    max_tokens: int = Field(512, ge=1, le=8192)
    seed: int = Field(-1, ge=-1, le=2**31 - 1)
    system_prompt: str = Field(
        "You are a helpful, friendly assistant in a community chat. Answer clearly and concisely.",
        max_length=4000,
    )
    # Who chooses tools (the `tool_routing` setting): see agent_graph/graph.
    tool_routing: Literal["router", "model", "off"] = "router"
    # A question asked while another is answered in the same conversation: wait for it
    # ("queue") or stop it ("interrupt").
    busy_mode: Literal["queue", "interrupt"] = "queue"
    # One person's messages this close together become one turn (0: every message its own).
    burst_window_s: float = Field(1.5, ge=0.0, le=10.0)
    # Daily token budgets (prompt + completion; 0: unlimited) and the ceiling on max_tokens.
    daily_tokens_person: int = Field(0, ge=0, le=10**9)
    daily_tokens_community: int = Field(0, ge=0, le=10**9)
    max_tokens_limit: int = Field(8192, ge=1, le=8192)

    def generation(self) -> dict[str, Any]:
        """The sampling parameters a model call takes, from these defaults."""
        return self.model_dump(
            include={
                "temperature",
                "top_p",
                "top_k",
                "min_p",
                "repeat_penalty",
                "max_tokens",
                "seed",
            }
        )


class Settings(BaseSettings):
    """Everything the bot needs to start. Unset URLs mean "start an embedded server"."""

    model_config = SettingsConfigDict(
        env_prefix="BOT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    redis_url: str | None = Field(None, description="Redis 6.2+/Valkey URL; unset: embedded")
    database_url: str | None = Field(None, description="PostgreSQL+pgvector URL; unset: embedded")
    model_path: Path | None = Field(None, description="GGUF chat model; unset: bundled SmolLM2")
    model_name: str = Field(
        "", description="the model the bot's requests ask the pool for; unset: any worker's"
    )
    chat_template: Path | None = Field(
        None, description="Jinja chat template file replacing the model's own; unset: the model's"
    )
    # How the model writes tool calls: "auto" (its template's native format, else ours),
    # "json" (ours), "hermes" (<tool_call> tags) or "llama3"; see inference/tool_formats.
    tool_format: Literal["auto", "json", "hermes", "llama3"] = "auto"
    data_dir: Path = Field(Path(".data"), description="embedded servers' data and local state")
    log_level: LogLevel = "WARNING"

    # In the `model` tool-routing mode, a written-out calculation still gets the
    # calculator without asking the model: see agent_graph/arithmetic_intent.
    arithmetic_detection: bool = True

    # Web search: a SearxNG instance's URL, or DuckDuckGo when unset; off for no web access.
    web_search: bool = True
    searxng_url: str | None = Field(None, description="SearxNG base URL; unset: DuckDuckGo")

    # Inference pool.
    worker_slots: int = Field(4, ge=1, le=64)
    context_size: int = Field(4096, ge=256, le=131072)
    # Host RAM the embedded worker keeps for KV states of conversations evicted from its
    # slots, so their next turn restores instead of re-reading (0: off).
    host_cache_mb: int = Field(256, ge=0, le=1_048_576)
    embedded_worker: bool = Field(
        True, description="run a worker inside the app; turn off when a worker pool runs elsewhere"
    )

    # Conversations and quotas.
    conversation_ttl_s: int = Field(30 * 24 * 3600, ge=60)
    user_requests_per_minute: int = Field(12, ge=1)
    scope_requests_per_minute: int = Field(120, ge=1)
    max_message_chars: int = Field(16000, ge=1)
    # Documents uploaded through a chat platform; larger files are refused before download.
    max_upload_mb: int = Field(20, ge=1, le=2000)

    sampling: SamplingDefaults = Field(default_factory=SamplingDefaults)
    telegram: TelegramSettings = Field(default_factory=TelegramSettings)
    discord: DiscordSettings = Field(default_factory=DiscordSettings)

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(
                "BOT_REDIS_URL must start with redis://, rediss:// or unix:// "
                "(or be unset to use the embedded server)"
            )
        return value or None

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str | None) -> str | None:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError(
                "BOT_DATABASE_URL must start with postgresql:// "
                "(or be unset to use the embedded server)"
            )
        return value or None


# Each settings class and its environment prefix, to name a bad variable in full.
ENV_PREFIXES: dict[str, str] = {
    model.__name__: str(model.model_config.get("env_prefix", ""))
    for model in (Settings, SamplingDefaults, TelegramSettings, DiscordSettings)
}
