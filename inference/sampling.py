"""Per-job sampling parameters, validated where a job is made and again where it runs."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from inference.errors import InvalidJob


class SamplingParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.95, ge=0.0, le=1.0)
    top_k: int = Field(40, ge=0, le=1000)
    min_p: float = Field(0.05, ge=0.0, le=1.0)
    repeat_penalty: float = Field(1.1, ge=0.5, le=2.0)
    max_tokens: int = Field(512, ge=1, le=32768)
    seed: int = Field(-1, ge=-1, le=2**32 - 1)
    stop: tuple[str, ...] = Field((), max_length=8)

    @classmethod
    def parse(cls, values: dict[str, Any]) -> SamplingParams:
        """Build from untrusted values; a bad one raises `InvalidJob` saying which and why."""
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc'])}: {error['msg']}"
                for error in exc.errors()
            )
            raise InvalidJob(f"invalid sampling parameters: {problems}") from exc
