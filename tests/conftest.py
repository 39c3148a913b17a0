"""Shared fixtures: a tiny real checkpoint, an isolated data directory, no real web search.

DuckDuckGo is the one thing outside the machine, so its single seam (`ddgs_text`) answers
"offline" unless a test says otherwise; everything else in the tests is the real code.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from ddgs.exceptions import DDGSException

from backends.llm.tiny import write_tiny_llama
from tests.serving import tiny_server  # noqa: F401  (a session fixture: one `ttdr serve`)
from ttdr.config import Settings
from ttdr.models import ResearchConfig

FIXTURES = Path(__file__).parent / "fixtures"
CORPUS = FIXTURES / "corpus"


@pytest.fixture(autouse=True)
def no_real_web_search(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(query: str, max_results: int) -> list[dict]:
        raise DDGSException("network unreachable (tests run offline)")

    monkeypatch.setattr("backends.search.web.ddgs_text", offline)


@pytest.fixture(autouse=True)
def no_user_config_file(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """The developer's own ~/.config/ttdr/config.toml must not change what a test sees
    (subprocesses inherit the variable too)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random LLaMA-shaped checkpoint in the Hugging Face layout, loaded like a real one."""
    return write_tiny_llama(tmp_path_factory.mktemp("models") / "tiny-llama")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh TTDR_HOME, so each test sees an empty history and index."""
    data = tmp_path / "ttdr-home"
    monkeypatch.setenv("TTDR_HOME", str(data))
    return data


@pytest.fixture
def settings(home: Path) -> Settings:
    return Settings()


@pytest.fixture
def tiny_config(tiny_model: Path) -> ResearchConfig:
    """Fast on a CPU: few short sections; the corpus is searched locally."""
    return ResearchConfig(
        model=str(tiny_model),
        search="local",
        docs=[CORPUS],
        iterations=2,
        max_sections=3,
        section_tokens=12,
        questions_per_step=2,  # exercise the parallel branches
    )
