"""Speech-to-text settings (environment prefix ``BOT_SPEECH_``), parsed once by `bot.config`."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Device = Literal["auto", "cpu", "cuda"]


class SpeechSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOT_SPEECH_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    enabled: bool = Field(True, description="transcribe voice messages at all")
    model_dir: Path | None = Field(
        None, description="a Whisper model folder in CTranslate2 format; unset: bundled base"
    )
    device: Device = "auto"
    # CTranslate2's compute type; "auto": int8 on the CPU, float16 on a GPU.
    compute_type: str = Field("auto", min_length=1)
    # Longer clips are refused. Telegram's voice notes run up to an hour, so this is ours.
    max_seconds: int = Field(300, ge=1, le=4 * 3600)
    # Larger files are refused before download (Telegram's public Bot API: 20 MB).
    max_mb: int = Field(20, ge=1, le=2000)
    # Clips transcribed at once; each holds a copy of the model's working memory.
    workers: int = Field(1, ge=1, le=16)
    # Clips that may wait for a worker before new ones are refused as busy.
    max_waiting: int = Field(16, ge=0, le=1000)
    # Threads per worker for the CPU (0: CTranslate2's default).
    cpu_threads: int = Field(0, ge=0, le=256)
    beam_size: int = Field(1, ge=1, le=10)
