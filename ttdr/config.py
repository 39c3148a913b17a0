"""Settings: defaults < config file < `TTDR_*` environment variables < CLI flags and API arguments.

The config files are `~/.config/ttdr/config.toml` (platformdirs' user config folder) and
`ttdr.toml` in the working directory, which wins over the user's file key by key; both are
read by pydantic-settings' TOML source. A key Settings does not know is refused, not ignored:
a typo in a file must not silently leave the default in force.

The data directory holds everything a user would want to keep or delete in one go: the
history database, the local document index and the model cache.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from platformdirs import user_config_path
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ttdr.errors import TtdrError
from ttdr.language import LanguageSetting, normalise_language
from ttdr.models import DEFAULT_MODEL, Grounding, Length, ResearchConfig, SearchMode

PROJECT_CONFIG = "ttdr.toml"


def default_home() -> Path:
    """`$XDG_DATA_HOME/ttdr` where that is set (to an absolute path, as the XDG spec asks),
    else `~/.local/share/ttdr` on every platform, so the data is where the docs say."""
    xdg = os.environ.get("XDG_DATA_HOME", "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".local" / "share"
    return base / "ttdr"


def user_config_file() -> Path:
    """`~/.config/ttdr/config.toml` on Linux (`$XDG_CONFIG_HOME` respected), the platform's
    own folder elsewhere."""
    return user_config_path("ttdr", appauthor=False) / "config.toml"


def config_files() -> list[Path]:
    """The config files that exist, lowest precedence first: the user's, then ./ttdr.toml."""
    candidates = [user_config_file(), Path.cwd() / PROJECT_CONFIG]
    return [path for path in candidates if path.is_file()]


class ConfigFileError(TtdrError):
    """A config file that is not TOML, cannot be read, or names an unknown setting."""


def read_config_file(path: Path) -> dict[str, Any]:
    """The settings in one config file; raises `ConfigFileError` naming the file (and key)."""
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigFileError(f"{path}: not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or exc
        raise ConfigFileError(f"cannot read {path}: {reason}") from None
    for key in data:
        if key not in Settings.model_fields:
            close = difflib.get_close_matches(key, Settings.model_fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigFileError(
                f"{path}: unknown setting {key!r}{hint}; `ttdr config show` lists them all"
            )
    return data


class ConfigFileSource(TomlConfigSettingsSource):
    """pydantic-settings' TOML source over `config_files()`, reading each through
    `read_config_file`, so a broken file is one line naming it rather than a traceback."""

    def __init__(self, settings_cls: type[BaseSettings]) -> None:
        super().__init__(settings_cls, toml_file=config_files())

    def _read_file(self, file_path: Path) -> dict[str, Any]:  # type: ignore[override]
        return read_config_file(file_path)


def env_var(name: str) -> str:
    return f"TTDR_{name.upper()}"


def setting_origins() -> dict[str, str]:
    """Where each setting's effective value comes from: its `TTDR_*` variable, the config
    file that sets it, or "default" (flags are per command, so they are not known here).
    Environment names are matched case-insensitively, as pydantic-settings reads them."""
    in_env = {name.upper() for name in os.environ}
    from_file: dict[str, str] = {}
    for path in config_files():  # later files win
        from_file |= dict.fromkeys(read_config_file(path), str(path))
    return {
        name: env_var(name) if env_var(name) in in_env else from_file.get(name, "default")
        for name in Settings.model_fields
    }


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TTDR_", extra="ignore")

    home: Path = Field(default_factory=default_home, description="Data directory.")
    models_dir: Path | None = Field(None, description="Model cache; default HOME/models.")
    model: str = Field(DEFAULT_MODEL, description="A preset (ttdr models) or a checkpoint folder.")
    device: str = Field("auto", description="auto, cpu or cuda[:n].")
    dtype: Literal["auto", "float32", "bfloat16", "int8", "int4"] = Field(
        "auto",
        description="Weights' dtype; auto picks bfloat16 where the hardware has it; int8 and int4 "
        "store the linear layers' weights in int8 or int4 (activations as auto; int4 on a CPU).",
    )
    compile: bool = Field(
        False,
        description="Compile decode steps with torch.compile: a one-token CPU step ~25% faster, "
        "after ~45 s of compiling on first use (~8 s once cached).",
    )
    search: SearchMode = Field(
        "auto", description="web, local, auto (web, local if offline), or searxng."
    )
    searxng_url: str | None = Field(
        None, description="A SearXNG instance for --search searxng, e.g. http://localhost:8888."
    )
    region: str | None = Field(
        None,
        pattern=r"^[a-z]{2}-[a-z]{2}$",
        description="Web search region as DuckDuckGo names them (de-de, uk-en; wt-wt: none).",
    )
    timelimit: Literal["d", "w", "m", "y"] | None = Field(
        None, description="Only web results from the last day, week, month or year."
    )
    iterations: int = Field(3, description="Denoising steps after the first draft (at most).")
    section_tokens: int = Field(160, description="Tokens per section write.")
    search_results: int = Field(12, description="Search hits asked of each query a step runs.")
    questions_per_step: int = Field(
        1, description="Search questions per step, answered in parallel."
    )
    variants: int = Field(2, description="Self-evolution: variants per evolving component.")
    evolution_rounds: int = Field(1, description="Self-evolution: judge-and-revise rounds.")
    judge_model: str | None = Field(None, description="Judge model; default: the run's model.")
    review_plan: bool = Field(
        False, description="Stop after the plan until it is accepted, edited or rejected."
    )
    fetch_timeout_s: float = Field(15.0, description="Seconds one web page may take in all.")
    page_cache_ttl_s: float = Field(86400.0, description="How long fetched pages are reused.")
    embeddings: bool = Field(
        False, description="Rank passages with MiniLM embeddings fused with BM25 (slower)."
    )
    length: Length = Field("medium", description="Report size, independent of the research depth.")
    words: int | None = Field(
        None, ge=50, le=20000, description="Report size in words (about); overrides length."
    )
    language: LanguageSetting = Field(
        "auto",
        description="Language of the plan, the search queries and the report; auto: the "
        "question's (other languages than these get English headings).",
    )
    grounding: Grounding = Field(
        "strict", description="strict: unsupported sentences are removed; marked: flagged."
    )
    allow_loopback: bool = Field(
        False, description="Let web fetches reach 127.0.0.1/::1 (your own local services)."
    )
    trust_env: bool = Field(
        True,
        description="Fetch through HTTPS_PROXY/HTTP_PROXY/ALL_PROXY (NO_PROXY honoured); "
        "the address guard still checks every page's host.",
    )
    # Where the model runs (README: "Run the model on a GPU server"). The judge's own
    # judge_* values fall back to the writer's one by one.
    backend: Literal["local", "ttdr", "openai"] = Field(
        "local",
        description="local: load the model here; ttdr: a `ttdr serve`; openai: any "
        "OpenAI-compatible server (generation only).",
    )
    base_url: str | None = Field(None, description="The remote server, e.g. http://gpu:8000.")
    api_key: SecretStr | None = Field(
        None, description="The remote server's bearer token; never printed or stored with a run."
    )
    remote_model: str | None = Field(
        None, description="Model to ask an OpenAI-compatible server for; default: its first."
    )
    remote_timeout_s: float = Field(300.0, gt=0, description="Longest wait for one answer.")
    remote_attempts: int = Field(4, ge=1, description="Tries per call (429, 5xx, timeouts).")
    remote_backoff_s: float = Field(0.5, ge=0, description="First wait between tries.")
    judge_backend: Literal["local", "ttdr", "openai"] | None = Field(
        None, description="The judge's backend; default: the writer's."
    )
    judge_base_url: str | None = None
    judge_api_key: SecretStr | None = None
    judge_remote_model: str | None = None

    @field_validator("language", mode="before")
    @classmethod
    def _language_code(cls, value: object) -> object:
        return normalise_language(value)

    @field_validator("home", "models_dir", mode="before")
    @classmethod
    def _expand_user(cls, value: object) -> object:
        # A config file's `home = "~/research"` means the user's home, as it would in a shell.
        if not (isinstance(value, str) and value):
            return value
        try:
            return Path(value).expanduser()
        except RuntimeError:  # "~name" for a user this machine does not have
            raise ValueError(f"{value!r} names a home this machine does not have") from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The first source that has a value wins: arguments, TTDR_* variables, config files.
        return (
            init_settings,
            env_settings,
            dotenv_settings,
            file_secret_settings,
            ConfigFileSource(settings_cls),
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
            "review_plan": self.review_plan,
            "length": self.length,
            "words": self.words,
            "language": None if self.language == "auto" else self.language,
            "grounding": self.grounding,
        }
        base.update({k: v for k, v in overrides.items() if v is not None})
        return ResearchConfig(**base)
