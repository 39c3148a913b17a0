"""A whole research run over the web path: the DuckDuckGo seam answers with pages of a real
HTTP server on 127.0.0.1, which are fetched, checked against robots.txt, extracted, cited and
kept. Only DuckDuckGo itself is stood in for."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest

import backends.search.web as web_module
from backends.search.loopback import LoopbackSite, Route
from tests.conftest import CORPUS, FIXTURES
from ttdr import Researcher
from ttdr.config import Settings
from ttdr.models import EventKind, RunStatus

QUESTION = "Why does the ocean have tides?"
HTML = {"Content-Type": "text/html; charset=utf-8"}
ROBOTS = b"User-agent: *\nDisallow: /private/\n"


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    web = FIXTURES / "web"
    routes = {
        "/robots.txt": Route(200, {"Content-Type": "text/plain"}, ROBOTS),
        "/tides.html": Route(200, HTML, (CORPUS / "tides.html").read_bytes()),
        "/diffusion.html": Route(200, HTML, (web / "diffusion.html").read_bytes()),
        "/private/tides-secret.html": Route(200, HTML, (web / "secret.html").read_bytes()),
        "/gone.html": Route(404, HTML, b"<html><body>Not here</body></html>"),
    }
    with LoopbackSite(routes) as running:
        yield running


@pytest.fixture
def web_results(site: LoopbackSite, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The one stand-in: DuckDuckGo answers every query with the same four pages, two per
    host name (a search keeps at most two results per site)."""
    pages = [
        site.url("/tides.html"),
        site.url("/private/tides-secret.html"),
        site.url("/gone.html", host="localhost"),
        site.url("/diffusion.html", host="localhost"),
    ]
    queries: list[str] = []

    def ddgs_text(query: str, max_results: int) -> list[dict[str, str]]:
        queries.append(query)
        return [{"href": url, "title": url, "body": f"About {url}."} for url in pages][:max_results]

    monkeypatch.setattr(web_module, "ddgs_text", ddgs_text)
    return queries


def test_a_web_research_run_fetches_cites_and_keeps_its_sources(
    home, tiny_config, site: LoopbackSite, web_results: list[str]
) -> None:
    settings = Settings(allow_loopback=True)
    config = tiny_config.model_copy(update={"search": "web", "docs": [], "iterations": 2})
    researcher = Researcher(config, settings=settings)
    run = researcher.get_run(researcher.run(QUESTION).run_id)

    assert run.status is RunStatus.done and len(web_results) >= 3  # preflight + each question
    urls = {s.url for s in run.sources_list}
    assert site.url("/tides.html") in urls and all(s.kind == "web" for s in run.sources_list)
    secret = site.url("/private/tides-secret.html")
    by_url = {s.url: s for s in run.sources_list}
    # A page that may not be read is known by its search snippet only, never by its text.
    assert by_url[secret].excerpt == f"About {secret}."
    assert all("crawlers" not in source.excerpt for source in run.sources_list)
    assert site.hits("/private/tides-secret.html") == 0  # robots.txt said no
    assert site.hits("/tides.html") == 1  # fetched once, then the page cache answers
    skipped = {e.data["url"]: e.data for e in researcher.events(run.id) if "url" in e.data}
    assert skipped[site.url("/private/tides-secret.html")]["category"] == "robots"
    assert skipped[site.url("/gone.html", host="localhost")]["category"] == "http"
    for reference in run.report.references:
        assert reference.url in urls
    cited = {int(n) for n in re.findall(r"\[(\d+)\]", run.report.body)}
    assert cited <= {r.number for r in run.report.references}
    assert not [t for t in threading.enumerate() if t.name == "ttdr-web-fetch"]  # closed


def test_a_warning_is_kept_when_every_page_fails_and_snippets_stand_in(
    home, tiny_config, site: LoopbackSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    def only_failures(query: str, max_results: int) -> list[dict[str, str]]:
        return [{"href": site.url("/gone.html"), "title": "Gone", "body": "Tides follow the Moon."}]

    monkeypatch.setattr(web_module, "ddgs_text", only_failures)
    config = tiny_config.model_copy(update={"search": "web", "docs": [], "iterations": 1})
    researcher = Researcher(config, settings=Settings(allow_loopback=True))
    run = researcher.get_run(researcher.run(QUESTION).run_id)
    assert run.status is RunStatus.done
    events = researcher.events(run.id)
    assert any(e.kind is EventKind.warning and "gone.html" in e.message for e in events)
