"""SearXNG as the search engine, against a real HTTP server on 127.0.0.1 that speaks SearXNG's
JSON API (`/search?q=...&format=json` → results[].url/title/content) and serves the result
pages; and DuckDuckGo's region and time limit as settings (ddgs itself is outside the machine,
so only its call is faked)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

import backends.search.web as web_module
from backends.search import LocalIndex, Retriever, SearxngEngine, WebSearch, WebSearchError
from backends.search.loopback import LoopbackSite, Route
from backends.search.web import ddgs_text as real_ddgs_text  # before conftest's offline stand-in
from ttdr.api import Researcher, open_index, open_web_search
from ttdr.cli import app, setting_error
from ttdr.config import Settings
from ttdr.errors import RetrievalUnavailableError
from ttdr.models import ResearchConfig
from ttdr.store import Store

HTML = {"Content-Type": "text/html; charset=utf-8"}
TIDES = (
    "<html><head><title>Why tides happen</title></head><body><article><h1>Tides</h1>"
    "<p>The gravitational pull of the moon raises two tidal bulges on opposite sides of the "
    "Earth, so most coasts see two high tides a day.</p>"
    "<p>When the sun and the moon line up, their pulls add up and spring tides follow.</p>"
    "</article></body></html>"
)
BAKING = (
    "<html><head><title>Bread</title></head><body><article><p>Sourdough needs a starter and "
    "a long, cool proof.</p></article></body></html>"
)


def searxng_json(*results: dict) -> Route:
    body = {"query": "q", "number_of_results": len(results), "results": list(results)}
    return Route(200, {"Content-Type": "application/json"}, json.dumps(body).encode())


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    with LoopbackSite() as served:
        served.routes["/tides.html"] = Route(200, HTML, TIDES.encode())
        served.routes["/bread.html"] = Route(200, HTML, BAKING.encode())
        served.routes["/robots.txt"] = Route(200, {"Content-Type": "text/plain"}, b"")
        served.routes["/search"] = searxng_json(
            {"url": served.url("/tides.html"), "title": "Why tides happen", "content": "Moon."},
            {"url": served.url("/bread.html"), "title": "Bread", "content": "Sourdough."},
            {"url": "javascript:alert(1)", "title": "not a page", "content": "x"},
        )
        yield served


def searches(site: LoopbackSite) -> list[dict[str, list[str]]]:
    return [
        parse_qs(urlsplit(r.path).query) for r in site.requests if r.path.startswith("/search?")
    ]


def test_searxng_results_are_fetched_and_ranked_like_web_results(site: LoopbackSite) -> None:
    engine = SearxngEngine(site.base + "/", region="de-de", timelimit="w")
    with WebSearch(engine=engine, allow_loopback=True) as web:
        outcome = web.search("why do spring tides happen moon sun", k=3)
    assert outcome.backend == "web" and outcome.skipped == []
    best = outcome.passages[0]
    assert best.url == site.url("/tides.html") and best.kind == "web"
    assert "spring tides follow" in " ".join(p.text for p in outcome.passages)  # the page itself
    assert all(not p.url.startswith("javascript") for p in outcome.passages)
    (asked,) = searches(site)
    assert asked["q"] == ["why do spring tides happen moon sun"] and asked["format"] == ["json"]
    assert asked["language"] == ["de-DE"] and asked["time_range"] == ["week"]
    assert site.hits("/tides.html") == 1


def test_a_rate_limited_instance_is_asked_again_after_a_pause(site: LoopbackSite) -> None:
    answer = site.routes["/search"]
    site.routes["/search"] = lambda seen: Route(429, {}, b"") if seen == 0 else answer
    web = WebSearch(engine=SearxngEngine(site.base), allow_loopback=True, retry_backoff_s=0.01)
    assert web.search("tides moon", k=2).passages
    assert len(searches(site)) == 2
    web.close()


@pytest.mark.parametrize(
    ("route", "says"),
    [
        (Route(403, {}, b"Forbidden"), "add `json` under `search: formats:`"),
        (Route(200, HTML, b"<html>the HTML page</html>"), "did not answer JSON"),
        (Route(502, {}, b""), "answered HTTP 502"),
        (Route(200, {"Content-Type": "application/json"}, b'{"answers": []}'), "results list"),
    ],
)
def test_an_instance_that_cannot_answer_says_why(
    site: LoopbackSite, route: Route, says: str
) -> None:
    site.routes["/search"] = route
    web = WebSearch(engine=SearxngEngine(site.base), allow_loopback=True)
    with pytest.raises(WebSearchError, match=re.escape(f"SearXNG at {site.base}")) as caught:
        web.search("tides", k=2)
    assert says in str(caught.value)


def test_an_instance_that_is_not_running_fails_the_run_with_one_clear_line(
    tmp_path: Path,
) -> None:
    closed = LoopbackSite().start()
    url = closed.base
    closed.close()  # nothing listens on that port now
    web = WebSearch(engine=SearxngEngine(url, timeout_s=2), allow_loopback=True)
    retriever = Retriever("searxng", LocalIndex(tmp_path / "index.db"), web)
    with pytest.raises(RetrievalUnavailableError, match=r"did not answer .*TTDR_SEARXNG_URL"):
        retriever.preflight("tides")


def test_a_research_run_with_search_searxng_cites_the_pages_it_found(
    site: LoopbackSite, home: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TTDR_SEARXNG_URL", site.base)
    monkeypatch.setenv("TTDR_ALLOW_LOOPBACK", "1")
    config = ResearchConfig(
        model=str(tiny_model), search="searxng", iterations=1, max_sections=2,
        section_tokens=8, variants=1, evolution_rounds=0, evolve=[],
    )  # fmt: skip
    researcher = Researcher(config, settings=Settings())
    researcher.run("Why do spring tides happen?")
    (run,) = researcher.history()
    urls = {source.url for source in researcher.get_run(run.id).sources_list}
    assert site.url("/tides.html") in urls
    assert searches(site)  # the links came from the instance, not from DuckDuckGo


def test_the_settings_choose_the_engine_and_pass_region_and_time_limit(
    home: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TTDR_SEARXNG_URL", "http://127.0.0.1:8888")
    monkeypatch.setenv("TTDR_REGION", "fr-fr")
    monkeypatch.setenv("TTDR_TIMELIMIT", "m")
    settings = Settings()
    index = open_index(settings)
    searx = open_web_search(settings, index, "searxng")
    assert isinstance(searx.engine, SearxngEngine)
    assert searx.engine.params == {"format": "json", "language": "fr-FR", "time_range": "month"}
    ddg = open_web_search(settings, index, "web")
    assert ddg.engine is None and ddg.ddgs_options == {"region": "fr-fr", "timelimit": "m"}

    seen: list[dict] = []

    def ddgs(query: str, max_results: int, **options: str) -> list[dict]:
        seen.append(options)
        return []

    monkeypatch.setattr(web_module, "ddgs_text", ddgs)
    ddg.search("tides", k=2)
    assert seen == [{"region": "fr-fr", "timelimit": "m"}]


def test_ddgs_text_hands_region_and_time_limit_to_ddgs(monkeypatch: pytest.MonkeyPatch) -> None:
    import ddgs

    calls: list[tuple[str, dict]] = []

    class FakeDDGS:
        def __init__(self, **kwargs: object) -> None:
            pass

        def text(self, query: str, **kwargs: object) -> list[dict]:
            calls.append((query, kwargs))
            return []

    monkeypatch.setattr(ddgs, "DDGS", FakeDDGS)
    real_ddgs_text("tides", 5, region="de-de", timelimit="y")
    real_ddgs_text("tides", 5)
    assert calls == [
        ("tides", {"max_results": 5, "region": "de-de", "timelimit": "y"}),
        ("tides", {"max_results": 5}),
    ]


def test_bad_search_settings_are_one_line_usage_errors(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = CliRunner().invoke(app, ["research", "q", "--search", "searxng"])
    assert missing.exit_code == 2
    assert "set TTDR_SEARXNG_URL" in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    assert Store(home / "ttdr.db").list_runs() == []  # refused before a run was stored
    monkeypatch.setenv("TTDR_TIMELIMIT", "fortnight")
    monkeypatch.setenv("TTDR_REGION", "Germany")
    with pytest.raises(ValidationError) as bad:
        Settings()
    line = setting_error(bad.value)  # what `ttdr` prints, exit 2
    assert "TTDR_TIMELIMIT='fortnight'" in line and "TTDR_REGION='Germany'" in line


def test_a_malformed_instance_address_is_refused_before_any_search() -> None:
    with pytest.raises(RetrievalUnavailableError, match="not an http"):
        SearxngEngine("localhost:8888")
    with pytest.raises(RetrievalUnavailableError, match="set TTDR_SEARXNG_URL"):
        SearxngEngine("  ")
    assert SearxngEngine("http://searx.example/searx/").base_url == "http://searx.example/searx"
