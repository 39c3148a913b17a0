"""Modes and fallbacks: what the agent gets, and what the user is told, when the web fails."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
from ddgs.exceptions import DDGSException

import backends.search.web as web_module
from backends.search import LocalIndex, Retriever, WebSearch
from ttdr.errors import RetrievalUnavailableError

CORPUS = Path(__file__).parent / "fixtures" / "corpus"
QUESTION = "Why are there two high tides a day?"


class FakeSearchEngine:
    """Stands in for `ddgs_text`: returns canned results or raises, and counts calls."""

    def __init__(self, results: list[dict[str, str]] | None = None, error: Exception | None = None):
        self.results = results or []
        self.error = error
        self.queries: list[str] = []

    def __call__(self, query: str, max_results: int) -> list[dict[str, str]]:
        self.queries.append(query)
        if self.error is not None:
            raise self.error
        return self.results


@pytest.fixture
def empty_index(tmp_path: Path) -> LocalIndex:
    return LocalIndex(tmp_path / "ttdr.sqlite")


@pytest.fixture
def index(empty_index: LocalIndex, tmp_path: Path) -> LocalIndex:
    shutil.copytree(CORPUS, tmp_path / "docs")
    empty_index.add(tmp_path / "docs")
    return empty_index


@pytest.fixture
def closed_port_url() -> str:
    """A loopback URL nothing listens on: fetching it fails at once, so snippets are used."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def offline(monkeypatch: pytest.MonkeyPatch) -> FakeSearchEngine:
    engine = FakeSearchEngine(error=DDGSException("ConnectError: Network is unreachable"))
    monkeypatch.setattr(web_module, "ddgs_text", engine)
    return engine


def online(monkeypatch: pytest.MonkeyPatch, base_url: str) -> FakeSearchEngine:
    engine = FakeSearchEngine(
        [{"href": f"{base_url}/tides", "title": "Tides", "body": "The Moon pulls the oceans."}]
    )
    monkeypatch.setattr(web_module, "ddgs_text", engine)
    return engine


def web() -> WebSearch:
    return WebSearch(fetch_timeout_s=2.0, retry_backoff_s=0.0, allow_loopback=True)


def test_auto_falls_back_to_the_local_index_and_says_so(
    index: LocalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline(monkeypatch)

    outcome = Retriever("auto", index, web()).search(QUESTION, k=3)

    assert outcome.backend == "local"
    assert outcome.warnings == [
        "web search failed (no search engine answered (ConnectError: Network is unreachable)); "
        "searched the local index instead"
    ]
    assert outcome.passages[0].url.endswith("tides.html")
    assert all(p.kind == "local" for p in outcome.passages)


def test_auto_stops_asking_the_web_for_a_while_after_it_failed(
    index: LocalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = offline(monkeypatch)
    retriever = Retriever("auto", index, web())

    retriever.search(QUESTION, k=3)
    second = retriever.search("How does BM25 rank passages?", k=3)

    assert len(engine.queries) == 1
    assert second.backend == "local"
    assert "searched the local index instead" in second.warnings[0]


def test_auto_uses_the_web_when_it_answers(
    index: LocalIndex, monkeypatch: pytest.MonkeyPatch, closed_port_url: str
) -> None:
    online(monkeypatch, closed_port_url)

    outcome = Retriever("auto", index, web()).search(QUESTION, k=3)

    assert outcome.backend == "web"
    assert [p.text for p in outcome.passages] == ["The Moon pulls the oceans."]
    assert outcome.skipped[0].url == f"{closed_port_url}/tides"
    assert outcome.skipped[0].reason.startswith("fetch failed (ConnectError")


def test_auto_searches_the_index_when_the_web_finds_nothing(
    index: LocalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        web_module, "ddgs_text", FakeSearchEngine(error=DDGSException("No results found."))
    )

    outcome = Retriever("auto", index, web()).search(QUESTION, k=3)

    assert outcome.backend == "local"
    assert outcome.passages[0].url.endswith("tides.html")
    assert outcome.warnings[-1] == "searched the local index instead"


def test_web_mode_failure_says_what_to_do(
    index: LocalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline(monkeypatch)

    with pytest.raises(RetrievalUnavailableError) as caught:
        Retriever("web", index, web()).search(QUESTION, k=3)

    assert str(caught.value) == (
        "Web search failed: no search engine answered (ConnectError: Network is unreachable). "
        "Check your network, or use --search local with documents indexed by "
        "`ttdr index add PATH`."
    )
    assert index.count() == 4  # nothing indexed is lost


def test_auto_with_nothing_indexed_and_no_network_cannot_search(
    empty_index: LocalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    offline(monkeypatch)

    with pytest.raises(RetrievalUnavailableError, match="local index is empty") as caught:
        Retriever("auto", empty_index, web()).search(QUESTION, k=3)

    assert "ttdr index add PATH" in str(caught.value)


def test_local_mode_never_touches_the_web(
    index: LocalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = offline(monkeypatch)

    outcome = Retriever("local", index).search(QUESTION, k=2)

    assert engine.queries == []
    assert outcome.backend == "local"
    assert outcome.warnings == []
    assert outcome.passages[0].url.endswith("tides.html")


def test_preflight_refuses_local_mode_with_an_empty_index(
    empty_index: LocalIndex, index: LocalIndex
) -> None:
    with pytest.raises(RetrievalUnavailableError) as caught:
        Retriever("local", LocalIndex(empty_index.db_path.with_name("other.sqlite"))).preflight(
            QUESTION
        )

    assert str(caught.value) == (
        "The local index is empty: add documents with `ttdr index add PATH` or pass --docs PATH"
    )
    assert Retriever("local", index).preflight(QUESTION) == []


def test_preflight_checks_the_web_once_and_the_run_reuses_that_search(
    empty_index: LocalIndex, monkeypatch: pytest.MonkeyPatch, closed_port_url: str
) -> None:
    engine = online(monkeypatch, closed_port_url)
    retriever = Retriever("web", empty_index, web())

    assert retriever.preflight(QUESTION) == []
    outcome = retriever.search(QUESTION, k=3)

    assert engine.queries == [QUESTION]
    assert [p.text for p in outcome.passages] == ["The Moon pulls the oceans."]


@pytest.mark.parametrize(
    ("mode", "message"),
    [("web", "Web search failed: "), ("auto", "the local index is empty")],
)
def test_preflight_fails_fast_when_the_web_is_the_only_source_and_fails(
    empty_index: LocalIndex, monkeypatch: pytest.MonkeyPatch, mode: str, message: str
) -> None:
    offline(monkeypatch)

    with pytest.raises(RetrievalUnavailableError, match=message):
        Retriever(mode, empty_index, web()).preflight(QUESTION)  # type: ignore[arg-type]


def test_preflight_in_auto_with_an_index_costs_no_web_search(
    index: LocalIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = offline(monkeypatch)

    assert Retriever("auto", index, web()).preflight(QUESTION) == []
    assert engine.queries == []
