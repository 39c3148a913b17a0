"""The fetcher against a real HTTP server on 127.0.0.1: limits, robots.txt, retries, formats.

Each test serves fixture pages, reads them through `Fetcher` (or `WebSearch`) and checks both
what was kept and, for what was not, the reason and its category.
"""

from __future__ import annotations

import asyncio
import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import backends.search.web as web_module
from backends.search.fetch import Fetcher, FetchSettings, FetchSkip, Page, _retry_after
from backends.search.loopback import LoopbackSite, Route
from backends.search.types import SkippedSource
from backends.search.web import WebSearch

FIXTURES = Path(__file__).parent / "fixtures"
PDF = (FIXTURES / "corpus" / "kv-cache.pdf").read_bytes()
HTML = {"Content-Type": "text/html; charset=utf-8"}


def article(title: str, *paragraphs: str) -> bytes:
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        f"<html><head><title>{title}</title></head><body><article><h1>{title}</h1>{body}"
        "</article></body></html>"
    ).encode()


GOOD = article(
    "Tides",
    "The Moon pulls the oceans toward it, raising a bulge of water on the near side of Earth.",
    "A second bulge forms on the far side, so most coasts see two high tides a day.",
)


def read(
    site: LoopbackSite, *paths: str, sleep: Any = None, **settings: Any
) -> list[Page | SkippedSource]:
    """Read `paths` from `site` with one fresh fetcher (loopback allowed, tiny backoff)."""
    options: dict[str, Any] = {"allow_loopback": True, "retry_backoff_s": 0.01, **settings}

    async def go() -> list[Page | SkippedSource]:
        fetcher = Fetcher(FetchSettings(**options), sleep=sleep)
        try:
            return await fetcher.read_many(site.url(path) for path in paths)
        finally:
            await fetcher.aclose()

    return asyncio.run(go())


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    with LoopbackSite({"/good": Route(200, HTML, GOOD)}) as server:
        yield server


def test_a_slow_page_times_out_and_the_others_are_kept(site: LoopbackSite) -> None:
    site.routes["/slow"] = Route(200, HTML, GOOD, delay_s=3.0)
    site.routes["/trickle"] = Route(200, HTML, GOOD * 20, chunk_size=200, chunk_delay_s=0.1)

    slow, trickle, good = read(site, "/slow", "/trickle", "/good", total_timeout_s=0.6)

    assert slow == SkippedSource(site.url("/slow"), "timed out after 0.6 s", "timeout")
    assert trickle == SkippedSource(site.url("/trickle"), "timed out after 0.6 s", "timeout")
    assert isinstance(good, Page) and "two high tides" in good.text


def test_no_data_within_the_read_timeout_is_a_timeout(site: LoopbackSite) -> None:
    site.routes["/silent"] = Route(200, HTML, GOOD, delay_s=2.0)

    (silent,) = read(site, "/silent", read_timeout_s=0.2)

    assert silent == SkippedSource(
        site.url("/silent"), "timed out waiting for data (0.2 s)", "timeout"
    )


def test_a_huge_page_is_cut_at_the_byte_limit_and_its_beginning_kept(site: LoopbackSite) -> None:
    filler = "".join(
        f"<p>Filler paragraph {i} about nothing much at all.</p>" for i in range(60000)
    )
    huge = (
        "<html><head><title>Huge</title></head><body><article>"
        "<p>The opening paragraph explains spring tides and neap tides in detail.</p>"
        f"{filler}<p>THE-END-MARKER</p></article></body></html>"
    ).encode()
    assert len(huge) > 3_000_000
    site.routes["/huge"] = Route(200, HTML, huge)

    async def fetch() -> bytes:
        fetcher = Fetcher(FetchSettings(allow_loopback=True, max_bytes=100_000))
        try:
            body = await fetcher.fetch(site.url("/huge"))
        finally:
            await fetcher.aclose()
        assert body.truncated
        return body.data

    data = asyncio.run(fetch())
    (page,) = read(site, "/huge", max_bytes=100_000)

    assert len(data) == 100_000 and huge.startswith(data)
    assert isinstance(page, Page) and page.truncated
    assert "spring tides and neap tides" in page.text
    assert "THE-END-MARKER" not in page.text


def test_a_pdf_over_the_limit_is_too_large_and_one_within_it_is_read(site: LoopbackSite) -> None:
    site.routes["/paper.pdf"] = Route(200, {"Content-Type": "application/pdf"}, PDF)

    (small,) = read(site, "/paper.pdf", max_bytes=len(PDF))
    (large,) = read(site, "/paper.pdf", max_bytes=500)

    assert isinstance(small, Page)
    assert small.title == "Caching keys and values in block diffusion"
    assert "reuses its KV cache" in small.text
    assert small.content_type == "application/pdf"
    assert large == SkippedSource(site.url("/paper.pdf"), "PDF larger than 500 bytes", "too_large")


def test_robots_txt_is_honoured_fetched_once_and_disallowed_pages_never_requested(
    site: LoopbackSite,
) -> None:
    site.routes["/robots.txt"] = Route(
        200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"
    )
    site.routes["/private/secret.html"] = Route(200, HTML, GOOD)
    site.routes["/old"] = Route(301, {"Location": "/private/secret.html"})

    secret, moved, good = read(site, "/private/secret.html", "/old", "/good")

    assert secret == SkippedSource(
        site.url("/private/secret.html"), "disallowed by robots.txt", "robots"
    )
    assert moved == SkippedSource(site.url("/old"), "disallowed by robots.txt", "robots")
    assert isinstance(good, Page) and good.title == "Tides"
    assert site.hits("/private/secret.html") == 0
    assert site.hits("/robots.txt") == 1


def test_a_failing_robots_txt_disallows_and_a_missing_one_allows(site: LoopbackSite) -> None:
    site.routes["/robots.txt"] = Route(503, {"Content-Type": "text/plain"}, b"down")

    (refused,) = read(site, "/good")
    del site.routes["/robots.txt"]  # now a 404
    (allowed,) = read(site, "/good")

    assert refused == SkippedSource(
        site.url("/good"), "robots.txt unavailable (HTTP 503)", "robots"
    )
    assert isinstance(allowed, Page)


def test_429_then_200_is_retried_after_the_time_the_server_asked_for(
    site: LoopbackSite,
) -> None:
    busy = Route(429, {"Retry-After": "3", "Content-Type": "text/plain"}, b"slow down")
    site.routes["/busy"] = lambda n: busy if n == 0 else Route(200, HTML, GOOD)
    site.routes["/flaky"] = lambda n: Route(503) if n < 2 else Route(200, HTML, GOOD)
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    busy_page, flaky_page = read(site, "/busy", "/flaky", sleep=no_sleep, retry_backoff_s=0.5)

    assert isinstance(busy_page, Page) and "two high tides" in busy_page.text
    assert isinstance(flaky_page, Page)
    assert (site.hits("/busy"), site.hits("/flaky")) == (2, 3)
    assert sorted(waits) == [0.5, 1.0, 3.0]  # Retry-After for one, backoff 0.5 s, 1 s for the other


def test_retries_give_up_with_the_status_and_long_waits_are_capped(site: LoopbackSite) -> None:
    site.routes["/down"] = Route(503)
    site.routes["/patient"] = lambda n: (
        Route(429, {"Retry-After": "3600"}) if n == 0 else Route(200, HTML, GOOD)
    )
    waits: list[float] = []

    async def no_sleep(seconds: float) -> None:
        waits.append(seconds)

    (down,) = read(site, "/down", sleep=no_sleep, retries=2)
    (patient,) = read(site, "/patient", sleep=no_sleep, max_retry_wait_s=2.0)

    assert down == SkippedSource(site.url("/down"), "HTTP 503 after 3 tries", "http")
    assert site.hits("/down") == 3
    assert isinstance(patient, Page)
    assert waits == [0.01, 0.02, 2.0]


def test_a_retry_wait_past_the_time_limit_gives_up_at_once(site: LoopbackSite) -> None:
    site.routes["/later"] = Route(429, {"Retry-After": "30"})

    (later,) = read(site, "/later", max_retry_wait_s=60, total_timeout_s=1.0)

    assert isinstance(later, SkippedSource) and later.category == "http"
    assert later.reason.startswith("HTTP 429 after 1 try (waiting 30 s more would pass")
    assert site.hits("/later") == 1


def test_malformed_binary_and_non_utf8_pages(site: LoopbackSite) -> None:
    site.routes["/broken.html"] = Route(
        200,
        HTML,
        b"<html><head><title>Broken</title><body><div class=x id=><p>Unclosed paragraph "
        b"about estuaries & tidal bores < 2 m<p>Another <b>bold <i>claim about the Severn "
        b"bore</div></span><table><tr><td>cell</html",
    )
    site.routes["/blob"] = Route(200, {"Content-Type": "application/octet-stream"}, b"\0\1\2" * 99)
    site.routes["/logo.png"] = Route(200, {"Content-Type": "image/png"}, b"\x89PNG\r\n\x1a\n")
    site.routes["/latin1.txt"] = Route(
        200,
        {"Content-Type": "text/plain; charset=iso-8859-1"},
        "Le café de la marée: à Saint-Malo, la mer monte de douze mètres.".encode("latin-1"),
    )
    site.routes["/cp1252.html"] = Route(
        200,
        {"Content-Type": "text/html"},
        '<html><head><meta charset="windows-1252"><title>Marées</title></head><body><article>'
        "<p>Les “grandes marées” de Bretagne — un spectacle à ne pas manquer, dit-on.</p>"
        "</article></body></html>".encode("cp1252"),
    )
    site.routes["/empty.html"] = Route(200, HTML, b"   ")

    broken, blob, logo, latin1, cp1252, empty = read(
        site, "/broken.html", "/blob", "/logo.png", "/latin1.txt", "/cp1252.html", "/empty.html"
    )

    assert isinstance(broken, Page) and broken.title == "Broken"
    assert "tidal bores < 2 m" in broken.text and "Severn bore" in broken.text
    assert blob == SkippedSource(site.url("/blob"), "binary content", "not_text")
    assert logo == SkippedSource(
        site.url("/logo.png"), "unsupported content type image/png", "not_text"
    )
    assert isinstance(latin1, Page) and "café de la marée" in latin1.text
    assert isinstance(cp1252, Page) and "“grandes marées”" in cp1252.text
    assert empty == SkippedSource(site.url("/empty.html"), "empty page", "not_text")


def test_redirects_are_followed_by_hand_up_to_five(site: LoopbackSite) -> None:
    for i in range(6):
        site.routes[f"/hop{i}"] = Route(302, {"Location": f"/hop{i + 1}"})
    site.routes["/hop6"] = Route(200, HTML, GOOD)
    site.routes["/loop"] = Route(302, {"Location": "/loop"})

    five, six, loop = read(site, "/hop1", "/hop0", "/loop")

    assert isinstance(five, Page) and five.url == site.url("/hop6")
    assert six == SkippedSource(site.url("/hop0"), "more than 5 redirects", "network")
    assert loop == SkippedSource(site.url("/loop"), "more than 5 redirects", "network")


def test_a_page_is_read_once_however_often_and_however_concurrently_asked(
    site: LoopbackSite,
) -> None:
    site.routes["/slowish"] = Route(200, HTML, GOOD, delay_s=0.2)

    results = read(site, "/slowish", "/slowish#a", "/slowish/", "/good", "/good", "/slowish")

    assert all(isinstance(r, Page) for r in results)
    assert (site.hits("/slowish"), site.hits("/good")) == (1, 1)


def test_concurrency_is_bounded_overall_and_per_host(site: LoopbackSite) -> None:
    site.routes["/wait"] = Route(200, HTML, GOOD, delay_s=0.15)
    names = {f"host{i}.test": ["127.0.0.1"] for i in range(4)}

    async def go() -> list[Page | SkippedSource]:
        settings = FetchSettings(
            allow_loopback=True, respect_robots=False, max_concurrency=3, per_host_concurrency=2
        )
        fetcher = Fetcher(settings, resolver=lambda host, port: names[host])
        try:
            urls = [site.url(f"/wait?{n}", f"host{n % 4}.test") for n in range(12)]
            return await fetcher.read_many(urls)
        finally:
            await fetcher.aclose()

    pages = asyncio.run(go())

    assert all(isinstance(p, Page) for p in pages)
    assert site.max_in_flight == 3
    assert max(site.max_in_flight_per_host.values()) <= 2


def test_the_user_agent_is_sent(site: LoopbackSite) -> None:
    read(site, "/good", user_agent="ttdr-test/1.0 (+https://example.org/bot)")

    assert {r.user_agent for r in site.requests} == {"ttdr-test/1.0 (+https://example.org/bot)"}


def test_fetch_raises_fetch_skip_with_the_category(site: LoopbackSite) -> None:
    async def go() -> FetchSkip:
        fetcher = Fetcher(FetchSettings(allow_loopback=True))
        try:
            await fetcher.fetch(site.url("/missing"))
        except FetchSkip as skip:
            return skip
        finally:
            await fetcher.aclose()
        raise AssertionError("no FetchSkip")

    skip = asyncio.run(go())

    assert (skip.reason, skip.category) == ("HTTP 404", "http")


def test_web_search_reports_every_skip_and_keeps_the_rest(
    site: LoopbackSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    site.routes["/robots.txt"] = Route(200, {}, b"User-agent: *\nDisallow: /private/\n")
    site.routes["/slow"] = Route(200, HTML, GOOD, delay_s=3.0)
    site.routes["/private/x"] = Route(200, HTML, GOOD)
    site.routes["/bin"] = Route(200, {"Content-Type": "application/octet-stream"}, b"\0" * 64)
    site.routes["/meta"] = Route(302, {"Location": "http://169.254.169.254/latest/meta-data/"})
    paths = ["/good", "/slow", "/private/x", "/bin", "/meta"]
    results = [{"href": site.url(p), "title": p, "body": ""} for p in paths]
    monkeypatch.setattr(web_module, "ddgs_text", lambda query, max_results: results)

    with WebSearch(fetch_timeout_s=0.6, allow_loopback=True, max_per_domain=None) as web:
        outcome = web.search("why are there two high tides a day", k=4)

    assert [p.url for p in outcome.passages] == [site.url("/good")]
    assert {s.url.removeprefix(site.base): s.category for s in outcome.skipped} == {
        "/slow": "timeout",
        "/private/x": "robots",
        "/bin": "not_text",
        "/meta": "address",
    }


def test_retry_after_is_read_as_seconds_or_as_a_date() -> None:
    soon = email.utils.format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)

    assert _retry_after("7") == 7.0
    assert 25 <= (_retry_after(soon) or 0) <= 30
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert _retry_after("soon") is None and _retry_after(None) is None
