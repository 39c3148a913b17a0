"""The page cache and the once-per-run memo: the same URL is never fetched twice in a run,
and a page read by an earlier run is taken from SQLite while it is fresh."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import backends.search.web as web_module
from backends.search import LocalIndex
from backends.search.loopback import LoopbackSite, Route
from backends.search.page_cache import CachedPage, PageCache
from backends.search.web import WebSearch

HTML = {"Content-Type": "text/html; charset=utf-8"}
TIDES = (
    b'<html lang="en-GB"><head><title>Tides</title>'
    b'<meta property="article:published_time" content="2023-07-14T08:00:00Z"></head>'
    b"<body><article><h1>Tides</h1><p>The Moon pulls the oceans toward it, raising a bulge of "
    b"water on the near side of Earth; a second bulge forms on the far side, so most coasts "
    b"see two high tides a day.</p></article></body></html>"
)


@pytest.fixture
def site() -> Iterator[LoopbackSite]:
    with LoopbackSite(
        {"/tides": Route(200, HTML, TIDES), "/moved": Route(301, {"Location": "/tides"})}
    ) as server:
        yield server


def engine_returning(*urls: str):
    def ddgs_text(query: str, max_results: int) -> list[dict[str, str]]:
        return [{"href": url, "title": "", "body": ""} for url in urls]

    return ddgs_text


def test_two_searches_returning_the_same_url_fetch_it_once(
    site: LoopbackSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        web_module, "ddgs_text", engine_returning(site.url("/tides"), site.url("/tides#x"))
    )

    with WebSearch(allow_loopback=True) as web:
        first = web.search("two high tides a day", k=3)
        second = web.search("why does the Moon raise tides", k=3)

    assert site.hits("/tides") == 1
    assert [p.url for p in first.passages] == [site.url("/tides")]
    assert [p.url for p in second.passages] == [site.url("/tides")]
    assert first.passages[0].published == "2023-07-14"
    assert first.passages[0].language == "en"


def test_a_later_run_reads_fresh_pages_from_the_cache_and_refetches_stale_ones(
    site: LoopbackSite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    db = tmp_path / "ttdr.db"
    monkeypatch.setattr(web_module, "ddgs_text", engine_returning(site.url("/moved")))

    with WebSearch(allow_loopback=True, cache_path=db) as first_run:
        first = first_run.search("two high tides a day", k=3)
    with WebSearch(allow_loopback=True, cache_path=db) as second_run:
        second = second_run.search("two high tides a day", k=3)
    assert (site.hits("/moved"), site.hits("/tides")) == (1, 1)
    with WebSearch(allow_loopback=True, cache_path=db, cache_ttl_s=0) as stale_run:
        stale_run.search("two high tides a day", k=3)

    assert second.passages == first.passages
    assert second.passages[0].url == site.url("/tides")  # where the redirect led
    assert second.passages[0].published == "2023-07-14"
    assert (site.hits("/moved"), site.hits("/tides")) == (2, 2)


def test_failed_pages_are_not_cached_across_runs(
    site: LoopbackSite, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    site.routes["/flaky"] = lambda n: Route(404) if n == 0 else Route(200, HTML, TIDES)
    monkeypatch.setattr(web_module, "ddgs_text", engine_returning(site.url("/flaky")))

    with WebSearch(allow_loopback=True, cache_path=tmp_path / "db") as run:
        failed = run.search("tides", k=2)
        again = run.search("tides", k=2)  # same run: the failure is remembered
    with WebSearch(allow_loopback=True, cache_path=tmp_path / "db") as later:
        later_outcome = later.search("tides", k=2)

    assert [s.reason for s in failed.skipped] == ["HTTP 404"] == [s.reason for s in again.skipped]
    assert later_outcome.skipped == [] and later_outcome.passages
    assert site.hits("/flaky") == 2


def test_the_cache_is_keyed_by_normalised_url_and_expires(tmp_path: Path) -> None:
    now = [1_000.0]
    cache = PageCache(tmp_path / "ttdr.db", ttl_s=60, clock=lambda: now[0])
    page = CachedPage("https://ex.org/final", "T", "text", "2024-01-02", "en", "text/html", now[0])

    cache.put("HTTPS://Ex.org:443/asked/#frag", page)

    assert cache.get("https://ex.org/asked") == page
    assert cache.get("https://ex.org/final/") == page  # the redirect's target too
    assert cache.get("https://ex.org/other") is None
    now[0] += 61
    assert cache.get("https://ex.org/asked") is None
    assert cache.prune() == 2 and cache.count() == 0


def test_the_cache_shares_the_database_file_with_the_local_index(tmp_path: Path) -> None:
    db = tmp_path / "ttdr.db"
    LocalIndex(db)
    PageCache(db)

    with sqlite3.connect(db) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}

    assert {"search_page_cache", "index_documents", "index_passages"} <= tables
