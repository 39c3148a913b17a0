"""Web search against a real HTTP server on 127.0.0.1; only the search engine call is faked."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ddgs.exceptions import DDGSException, TimeoutException

import backends.search.web as web_module
from backends.search import WebSearch, WebSearchError
from backends.search.web import normalise_url

FIXTURES = Path(__file__).parent / "fixtures"
LONG_PARAGRAPHS = "".join(
    f"<p>Paragraph {i}: diffusion models draft and denoise text. {'Filler words. ' * 30}</p>"
    for i in range(12)
)
LONG_PAGE = f"<html><head><title>Long</title></head><body>{LONG_PARAGRAPHS}</body></html>"
ROUTES: dict[str, tuple[int, dict[str, str], bytes]] = {
    "/robots.txt": (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"),
    "/diffusion.html": (
        200,
        {"Content-Type": "text/html; charset=utf-8"},
        (FIXTURES / "web" / "diffusion.html").read_bytes(),
    ),
    "/cooking.html": (
        200,
        {"Content-Type": "text/html"},
        (FIXTURES / "web" / "cooking.html").read_bytes(),
    ),
    "/private/secret.html": (
        200,
        {"Content-Type": "text/html"},
        (FIXTURES / "web" / "secret.html").read_bytes(),
    ),
    "/paper.pdf": (
        200,
        {"Content-Type": "application/pdf"},
        (FIXTURES / "corpus" / "kv-cache.pdf").read_bytes(),
    ),
    "/long.html": (200, {"Content-Type": "text/html"}, LONG_PAGE.encode()),
    "/blob": (200, {"Content-Type": "application/octet-stream"}, b"\x00\x01\x02" * 100),
    "/logo.png": (200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n"),
    "/old": (301, {"Location": "/diffusion.html"}, b""),
    "/loop": (302, {"Location": "/loop"}, b""),
}


class FixtureHandler(BaseHTTPRequestHandler):
    user_agents: list[str] = []  # noqa: RUF012 -- shared record of what clients sent
    hosts: list[str] = []  # noqa: RUF012

    def do_GET(self) -> None:
        FixtureHandler.user_agents.append(self.headers.get("User-Agent", ""))
        FixtureHandler.hosts.append(self.headers.get("Host", ""))
        status, headers, body = ROUTES.get(self.path, (404, {"Content-Type": "text/html"}, b"no"))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), FixtureHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class FakeSearchEngine:
    """Stands in for `ddgs_text`: returns canned results or raises, and counts calls."""

    def __init__(self, results: list[dict[str, str]] | None = None, *errors: Exception) -> None:
        self.results = results or []
        self.errors = list(errors)
        self.queries: list[str] = []

    def __call__(self, query: str, max_results: int) -> list[dict[str, str]]:
        self.queries.append(query)
        if self.errors:
            raise self.errors.pop(0)
        return self.results[:max_results]


def result(url: str, title: str = "", body: str = "") -> dict[str, str]:
    return {"href": url, "title": title, "body": body}


def search(monkeypatch: pytest.MonkeyPatch, engine: FakeSearchEngine) -> WebSearch:
    monkeypatch.setattr(web_module, "ddgs_text", engine)
    return WebSearch(
        fetch_timeout_s=5.0, retry_backoff_s=0.0, allow_loopback=True, max_per_domain=None
    )


def test_pages_are_fetched_read_and_ranked_against_the_query(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FakeSearchEngine(
        [
            result(f"{site}/cooking.html", "Soup", "A soup recipe."),
            result(f"{site}/diffusion.html", "Diffusion", "About decoding."),
            result(f"{site}/paper.pdf", "KV paper", "About caching."),
        ]
    )

    outcome = search(monkeypatch, engine).search(
        "parallel decoding with a confidence threshold", k=5
    )

    assert outcome.backend == "web"
    assert outcome.skipped == []
    first = outcome.passages[0]
    assert first.url == f"{site}/diffusion.html"
    assert first.title == "Parallel decoding in masked diffusion models"
    assert "confidence threshold" in first.text
    assert first.kind == "web"
    assert [p.score for p in outcome.passages] == sorted(
        (p.score for p in outcome.passages), reverse=True
    )
    assert f"{site}/cooking.html" not in {p.url for p in outcome.passages}  # shares no words
    assert "ttdr/0.1 (+research agent)" in FixtureHandler.user_agents


def test_a_pdf_result_is_read_too(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = FakeSearchEngine(
        [result(f"{site}/diffusion.html"), result(f"{site}/paper.pdf", "KV paper")]
    )

    outcome = search(monkeypatch, engine).search("KV cache for finished blocks", k=3)

    assert outcome.passages[0].url == f"{site}/paper.pdf"
    assert outcome.passages[0].title == "Caching keys and values in block diffusion"


def test_pages_that_fail_are_skipped_with_a_reason_and_their_snippet_stands_in(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    failing = {
        "/missing": "HTTP 404",
        "/blob": "binary content",
        "/logo.png": "unsupported content type image/png",
        "/loop": "more than 5 redirects",
        "/private/secret.html": "disallowed by robots.txt",
    }
    engine = FakeSearchEngine(
        [result(f"{site}/diffusion.html", "Diffusion", "")]
        + [
            result(f"{site}{path}", path, f"Snippet about masked diffusion {path}")
            for path in failing
        ]
        + [result(f"{site}/nosnippet", "No snippet", "")]
    )

    outcome = search(monkeypatch, engine).search("masked diffusion decoding", k=10)

    reasons = {s.url.removeprefix(site): s.reason for s in outcome.skipped}
    assert reasons == {**failing, "/nosnippet": "HTTP 404"}
    assert outcome.passages[0].url == f"{site}/diffusion.html"  # the page that worked is kept
    snippets = {
        p.url.removeprefix(site): p.text for p in outcome.passages if p.title.startswith("/")
    }
    assert snippets == {path: f"Snippet about masked diffusion {path}" for path in failing}


def test_redirects_are_followed_and_duplicates_collapse(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FakeSearchEngine(
        [
            result(f"{site}/old"),
            result(f"{site}/diffusion.html#section"),
            result(f"{site}/diffusion.html/"),
        ]
    )

    outcome = search(monkeypatch, engine).search("masked diffusion", k=5)

    assert {p.url for p in outcome.passages} == {f"{site}/diffusion.html"}
    texts = [p.text for p in outcome.passages]
    assert len(texts) == len(set(texts))


def test_at_most_two_passages_per_page(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = FakeSearchEngine([result(f"{site}/long.html"), result(f"{site}/diffusion.html")])

    outcome = search(monkeypatch, engine).search("diffusion models denoise", k=8)

    urls = [p.url for p in outcome.passages]
    assert urls.count(f"{site}/long.html") == 2
    assert f"{site}/diffusion.html" in urls


def test_a_page_found_before_is_read_more_closely_without_fetching_it_again(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FakeSearchEngine([result(f"{site}/long.html")])
    web = search(monkeypatch, engine)
    first = web.search("diffusion models denoise", k=8)
    fetched = len(FixtureHandler.hosts)

    closer = web.page_passages("Paragraph 7 diffusion", f"{site}/long.html", 5)

    assert len(first.passages) == 2  # a search takes at most two passages of one page
    assert len(closer.passages) == 5
    assert all(p.url == f"{site}/long.html" for p in closer.passages)
    assert "Paragraph 7" in closer.passages[0].text
    assert len(FixtureHandler.hosts) == fetched  # answered from the fetcher's memo
    missing = web.page_passages("anything", f"{site}/nowhere.html", 5)
    assert not missing.passages and missing.skipped[0].url == f"{site}/nowhere.html"


def test_a_pdf_over_the_byte_limit_is_skipped(site: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(web_module, "ddgs_text", FakeSearchEngine([result(f"{site}/paper.pdf")]))

    outcome = WebSearch(max_bytes=200, allow_loopback=True).search("kv cache", k=3)

    assert outcome.skipped[0].reason == "PDF larger than 200 bytes"
    assert outcome.passages == []


def test_rate_limits_are_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = FakeSearchEngine(
        [], *[DDGSException("https://lite.duckduckgo.com/lite/ 202 Ratelimit")] * 3
    )

    with pytest.raises(WebSearchError, match="rate-limiting"):
        search(monkeypatch, engine).search("anything", k=3)

    assert len(engine.queries) == 3  # the first try and two retries


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (TimeoutException("engine timed out"), "timed out"),
        (DDGSException("ConnectError: dns error"), "names could not be resolved"),
        (DDGSException("ConnectError: reset by peer"), "no search engine answered"),
        (OSError("Network is unreachable"), "network error"),
    ],
)
def test_search_engine_failures_raise_with_the_reason(
    monkeypatch: pytest.MonkeyPatch, error: Exception, message: str
) -> None:
    engine = FakeSearchEngine([], error)

    with pytest.raises(WebSearchError, match=message):
        search(monkeypatch, engine).search("anything", k=3)

    assert len(engine.queries) == 1  # only rate limits are worth retrying


def test_no_results_is_an_empty_outcome_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = FakeSearchEngine([], DDGSException("No results found."))

    outcome = search(monkeypatch, engine).search("zzqx", k=3)

    assert outcome.passages == []
    assert outcome.warnings == ["web search found nothing for 'zzqx'"]


def test_urls_are_normalised_for_deduplication() -> None:
    assert normalise_url("HTTPS://Example.ORG:443/a/b/#frag") == "https://example.org/a/b"
    assert normalise_url("http://example.org") == "http://example.org/"
    assert normalise_url("http://example.org:8080/x?q=1") == "http://example.org:8080/x?q=1"


def test_results_are_capped_per_site_before_anything_is_fetched(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = site.rsplit(":", 1)[1]
    names = ["a.example.org", "b.example.org", "www.example.org", "other.example.net"]
    engine = FakeSearchEngine(
        [result(f"http://{name}:{port}/diffusion.html", name, "masked diffusion") for name in names]
    )
    monkeypatch.setattr(web_module, "ddgs_text", engine)
    hosts_before = len(FixtureHandler.hosts)

    with WebSearch(
        allow_loopback=True, resolver=lambda host, port: ["127.0.0.1"], max_per_domain=2
    ) as web:
        outcome = web.search("masked diffusion decoding", k=10)

    fetched = {h.split(":")[0] for h in FixtureHandler.hosts[hosts_before:]}
    assert fetched == {"a.example.org", "b.example.org", "other.example.net"}  # not www.
    assert outcome.skipped == []
    assert outcome.passages[0].url == f"http://a.example.org:{port}/diffusion.html"


class SoupMinded:
    """A stand-in embedder that finds every text about soup similar to every query."""

    def encode(self, texts: list[str]) -> np.ndarray:
        vectors = np.zeros((len(texts), 384), dtype=np.float32)
        for row, text in enumerate(texts):
            vectors[row, 0 if row == 0 or "soup" in text.lower() else 1] = 1.0
        return vectors


def test_with_an_embedder_pages_are_ranked_by_meaning_too(
    site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = FakeSearchEngine(
        [result(f"{site}/cooking.html", "Soup", ""), result(f"{site}/diffusion.html", "D", "")]
    )
    monkeypatch.setattr(web_module, "ddgs_text", engine)

    with WebSearch(allow_loopback=True, max_per_domain=None, embedder=SoupMinded()) as web:
        outcome = web.search("parallel decoding with a confidence threshold", k=5)

    urls = [p.url for p in outcome.passages]
    assert f"{site}/cooking.html" in urls  # BM25 alone leaves it out: it shares no words
    assert urls[0] in {f"{site}/cooking.html", f"{site}/diffusion.html"}
    assert outcome.passages[0].score < 1 / 30  # a reciprocal-rank-fusion score
