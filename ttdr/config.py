"""Settings read from `TTDR_*` environment variables; CLI flags and API arguments override them.

The data directory holds everything a user would want to keep or delete in one go: the
history database, the local document index and the model cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from ttdr.models import DEFAULT_MODEL, Grounding, Length, ResearchConfig, SearchMode


def default_home() -> Path:
    return Path.home() / ".local" / "share" / "ttdr"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TTDR_", extra="ignore")

    home: Path = Field(default_factory=default_home, description="Data directory.")
    models_dir: Path | None = Field(None, description="Model cache; default HOME/models.")
    model: str = DEFAULT_MODEL
    device: str = Field("auto", description="auto, cpu or cuda[:n].")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="Weights' dtype; auto picks bfloat16 where the hardware has it."
    )
    search: SearchMode = "auto"
    iterations: int = 3
    section_tokens: int = 160
    search_results: int = 12
    questions_per_step: int = 1
    variants: int = 2
    evolution_rounds: int = 1
    judge_model: str | None = Field(None, description="Judge model; default: the run's model.")
    fetch_timeout_s: float = 15.0
    page_cache_ttl_s: float = Field(86400.0, description="How long fetched pages are reused.")
    embeddings: bool = Field(
        False, description="Rank passages with MiniLM embeddings fused with BM25 (slower)."
    )
    length: Length = Field("medium", description="Report size, independent of the research depth.")
    grounding: Grounding = Field(
        "strict", description="strict: unsupported sentences are removed; marked: flagged."
    )
    allow_loopback: bool = Field(
        False, description="Let web fetches reach 127.0.0.1/::1 (your own local services)."
    )

    @property
    def db_path(self) -> Path:
        return self.home / "ttdr.db"

    @property
    def model_cache(self) -> Path:
        return self.models_dir or self.home / "models"

    def research_config(self, **overrides: object) -> ResearchConfig:
        """A run config from these settings, with explicit (non-None) overrides applied."""
        base = {
            "model": self.model,
            "search": self.search,
            "iterations": self.iterations,
            "section_tokens": self.section_tokens,
            "search_results": self.search_results,
            "questions_per_step": self.questions_per_step,
            "variants": self.variants,
            "evolution_rounds": self.evolution_rounds,
            "judge_model": self.judge_model,
            "length": self.length,
            "grounding": self.grounding,
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return ResearchConfig(**base)
