"""Web search: DuckDuckGo (through ddgs) for links, then fetch, extract and rank the pages.

Another engine can supply the links instead (`engine`: a SearXNG instance, searxng.py); the
pages it finds are read and ranked the same way. ddgs' `region` and `timelimit` pass through.
`ddgs_text` is the one seam to DuckDuckGo; tests replace it with monkeypatch and serve
the pages from 127.0.0.1 (with `allow_loopback=True`). Results are de-duplicated by normalised
URL and capped per site; the pages are read by a `Fetcher` (fetch.py: limits, robots.txt,
retries, the address guard, the page cache) on one event loop in a background thread, shared
by every search of this `WebSearch` (one research run), so concurrent searches share its
limits, its robots.txt cache and its memo of pages already read. A page that cannot be read is
reported as skipped with the reason, and its search snippet stands in for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException

from backends.search.fetch import DEFAULT_USER_AGENT, Fetcher, FetchSettings, Page, Sleep
from backends.search.guard import Resolver
from backends.search.page_cache import DEFAULT_TTL_S, PageCache
from backends.search.passages import rank_passages, split_passages
from backends.search.types import Passage, SearchOutcome, SkippedSource
from backends.search.urls import normalise_url, site_of

if TYPE_CHECKING:
    from backends.search.embeddings import Embedder

__all__ = [
    "DEFAULT_USER_AGENT",
    "LinkEngine",
    "SearchRateLimited",
    "WebSearch",
    "WebSearchError",
    "ddgs_text",
    "normalise_url",
]

DDGS_TIMEOUT_S = 10
PASSAGES_PER_PAGE = 2  # so one long page cannot crowd out every other source
MAX_RESULTS_PER_SITE = 2  # so one site cannot fill every result
_RATE_LIMIT_SIGNS = ("ratelimit", "rate limit", "429", "too many requests")
_T = TypeVar("_T")


def ddgs_text(query: str, max_results: int, **options: str) -> list[dict[str, Any]]:
    """Search results as dicts with `title`, `href` and `body` (the snippet); `options` are
    ddgs' own (`region="de-de"`, `timelimit="w"`), passed only when set."""
    from ddgs import DDGS

    return DDGS(timeout=DDGS_TIMEOUT_S).text(query, max_results=max_results, **options)


class WebSearchError(Exception):
    """The search engines could not be asked (offline, blocked, timed out); says why."""


class SearchRateLimited(WebSearchError):
    """An engine asked us to slow down (HTTP 429): worth a retry after a pause."""


# Another source of links: (query, max_results) -> results shaped as `ddgs_text`'s.
LinkEngine = Callable[[str, int], list[dict[str, Any]]]


@dataclass(frozen=True)
class _SearchResult:
    url: str
    title: str
    snippet: str


@dataclass(frozen=True)
class _Candidate:
    url: str
    title: str
    text: str
    from_snippet: bool
    published: str | None = None
    language: str | None = None


class WebSearch:
    """Search the web and return the passages of the result pages that best match the query.

    `fetch_timeout_s` is the total time one page may take (redirects and retries included);
    `allow_loopback` lets pages on 127.0.0.1 / ::1 be fetched (never private addresses);
    `trust_env` sends page fetches through HTTPS_PROXY etc. (see fetch.py);
    `cache_path` is the SQLite file for the page cache (None: pages are remembered for this
    object's life only); `embedder` turns on hybrid BM25 + embedding ranking;
    `max_per_domain` caps results per site (None: no cap); `engine` asks another search
    engine for the links instead of DuckDuckGo (searxng.py), `region` and `timelimit` are
    DuckDuckGo's (`de-de`; d, w, m, y); `resolver` and `sleep` are seams for tests. Call
    `close()` (or use `with`) to stop the fetch thread early; it also stops when the object is
    garbage-collected.
    """

    def __init__(
        self,
        fetch_timeout_s: float = 15.0,
        max_bytes: int = 5_000_000,
        user_agent: str = DEFAULT_USER_AGENT,
        *,
        results_per_query: int = 8,
        max_per_domain: int | None = MAX_RESULTS_PER_SITE,
        max_concurrency: int = 8,
        per_host_concurrency: int = 2,
        connect_timeout_s: float = 5.0,
        read_timeout_s: float = 10.0,
        retries: int = 2,
        retry_backoff_s: float = 1.0,
        max_retry_wait_s: float = 10.0,
        respect_robots: bool = True,
        allow_loopback: bool = False,
        trust_env: bool = True,
        cache_path: Path | str | None = None,
        cache_ttl_s: float = DEFAULT_TTL_S,
        embedder: Embedder | None = None,
        engine: LinkEngine | None = None,
        region: str | None = None,
        timelimit: str | None = None,
        resolver: Resolver | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.fetch_timeout_s = fetch_timeout_s
        self.results_per_query = results_per_query
        self.max_per_domain = max_per_domain
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self.embedder = embedder
        self.engine = engine
        self.ddgs_options = {
            name: value for name, value in (("region", region), ("timelimit", timelimit)) if value
        }
        self.settings = FetchSettings(
            max_concurrency=max_concurrency,
            per_host_concurrency=per_host_concurrency,
            connect_timeout_s=connect_timeout_s,
            read_timeout_s=read_timeout_s,
            total_timeout_s=fetch_timeout_s,
            max_bytes=max_bytes,
            user_agent=user_agent,
            respect_robots=respect_robots,
            retries=retries,
            retry_backoff_s=retry_backoff_s,
            max_retry_wait_s=max_retry_wait_s,
            allow_loopback=allow_loopback,
            trust_env=trust_env,
        )
        self.cache = PageCache(cache_path, cache_ttl_s) if cache_path is not None else None
        self._resolver = resolver
        self._sleep = sleep
        self._fetcher: Fetcher | None = None
        self._loop: _LoopThread | None = None
        self._start_lock = threading.Lock()

    def search(self, query: str, k: int = 8) -> SearchOutcome:
        """Raises `WebSearchError` when the search engines fail; a page that fails is skipped."""
        outcome = SearchOutcome(backend="web")
        results = self._find(query)
        if not results:
            outcome.warnings.append(f"web search found nothing for {query!r}")
            return outcome
        fetcher, loop = self._started()
        pages = loop.run(fetcher.read_many(result.url for result in results))
        candidates: list[_Candidate] = []
        for result, page in zip(results, pages, strict=True):
            if isinstance(page, SkippedSource):
                outcome.skipped.append(page)
                if result.snippet.strip():
                    candidates.append(_Candidate(result.url, result.title, result.snippet, True))
                continue
            candidates.extend(_page_candidates(page, result))
        outcome.passages = _best_passages(query, candidates, k, self.embedder)
        return outcome

    def page_passages(self, query: str, url: str, k: int) -> SearchOutcome:
        """The best `k` passages of one page for `query`, for a run that reads a page closely.

        The fetcher read the page for an earlier search, so it answers from its memo (or the
        page cache) without another request."""
        outcome = SearchOutcome(backend="web")
        fetcher, loop = self._started()
        (page,) = loop.run(fetcher.read_many([url]))
        if isinstance(page, SkippedSource):
            outcome.skipped.append(page)
            return outcome
        candidates = _page_candidates(page, _SearchResult(url, page.title, ""))
        ranked = rank_passages(
            query, [(c.title, c.text) for c in candidates], embedder=self.embedder
        )
        outcome.passages = [
            Passage(c.url, c.title, c.text, hit.score, "web", c.published, c.language)
            for hit in ranked[:k]
            for c in [candidates[hit.index]]
        ]
        return outcome

    def close(self) -> None:
        with self._start_lock:
            loop, fetcher = self._loop, self._fetcher
            self._loop = self._fetcher = None
        if loop is not None and fetcher is not None:
            loop.stop(fetcher)
        close_engine = getattr(self.engine, "close", None)
        if close_engine is not None:
            close_engine()

    def __enter__(self) -> WebSearch:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _started(self) -> tuple[Fetcher, _LoopThread]:
        with self._start_lock:
            if self._fetcher is None or self._loop is None:
                self._fetcher = Fetcher(
                    self.settings, cache=self.cache, resolver=self._resolver, sleep=self._sleep
                )
                self._loop = _LoopThread()
                weakref.finalize(self, self._loop.stop, self._fetcher)
            return self._fetcher, self._loop

    def _find(self, query: str) -> list[_SearchResult]:
        """Ask the search engines, retrying what looks like rate limiting; de-duplicate by
        normalised URL and keep at most `max_per_domain` results per site."""
        for attempt in range(self.retries + 1):
            try:
                if self.engine is not None:
                    raw = self.engine(query, self.results_per_query)
                else:
                    raw = ddgs_text(query, self.results_per_query, **self.ddgs_options)
                break
            except SearchRateLimited as error:
                if attempt < self.retries:
                    time.sleep(self.retry_backoff_s * 2**attempt * (1 + random.random()))
                    continue
                raise WebSearchError(str(error)) from error
            except DDGSException as error:
                if str(error).strip().lower().startswith("no results found"):
                    return []
                if attempt < self.retries and _looks_rate_limited(error):
                    time.sleep(self.retry_backoff_s * 2**attempt * (1 + random.random()))
                    continue
                raise WebSearchError(_why(error)) from error
            except OSError as error:
                raise WebSearchError(f"network error ({error or type(error).__name__})") from error
        results: dict[str, _SearchResult] = {}
        per_site: dict[str, int] = {}
        for item in raw:
            url = str(item.get("href") or item.get("url") or "").strip()
            if urlsplit(url).scheme not in {"http", "https"} or normalise_url(url) in results:
                continue
            site = site_of(url)
            if self.max_per_domain and per_site.get(site, 0) >= self.max_per_domain:
                continue
            per_site[site] = per_site.get(site, 0) + 1
            title = str(item.get("title") or "").strip()
            snippet = str(item.get("body") or "").strip()
            results[normalise_url(url)] = _SearchResult(url, title, snippet)
        return list(results.values())


class _LoopThread:
    """An event loop running in a daemon thread; `run(coro)` waits for a coroutine on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="ttdr-web-fetch", daemon=True
        )
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, _T]) -> _T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # e.g. Ctrl-C while waiting: stop the fetches too
            raise

    def stop(self, fetcher: Fetcher) -> None:
        if self.loop.is_closed() or not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):  # best effort; the thread is a daemon anyway
            asyncio.run_coroutine_threadsafe(fetcher.aclose(), self.loop).result(timeout=5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            self.loop.close()


def _page_candidates(page: Page, result: _SearchResult) -> list[_Candidate]:
    title = page.title or result.title
    return [
        _Candidate(page.url, title, span.text, False, page.published, page.language)
        for span in split_passages(page.text)
    ]


def _best_passages(
    query: str, candidates: list[_Candidate], k: int, embedder: Embedder | None = None
) -> list[Passage]:
    """Rank every page passage and snippet together; keep the best k with at most two per page.
    Snippets that match nothing still come last: the engine chose them."""
    chosen: list[Passage] = []
    per_url: dict[str, int] = {}
    seen_texts: set[str] = set()

    def take(candidate: _Candidate, score: float) -> None:
        if len(chosen) >= k or per_url.get(candidate.url, 0) >= PASSAGES_PER_PAGE:
            return
        if candidate.text in seen_texts:  # mirrors and syndicated copies
            return
        seen_texts.add(candidate.text)
        per_url[candidate.url] = per_url.get(candidate.url, 0) + 1
        chosen.append(
            Passage(
                candidate.url,
                candidate.title,
                candidate.text,
                score,
                "web",
                candidate.published,
                candidate.language,
            )
        )

    ranked = rank_passages(query, [(c.title, c.text) for c in candidates], embedder=embedder)
    for hit in ranked:
        take(candidates[hit.index], hit.score)
    matched = {hit.index for hit in ranked}
    for i, candidate in enumerate(candidates):
        if candidate.from_snippet and i not in matched:
            take(candidate, 0.0)
    return chosen


def _looks_rate_limited(error: DDGSException) -> bool:
    if isinstance(error, RatelimitException):
        return True
    message = str(error).lower()
    return any(sign in message for sign in _RATE_LIMIT_SIGNS)


def _why(error: DDGSException) -> str:
    detail = str(error).strip() or type(error).__name__
    if "dns" in detail.lower() or "resolve" in detail.lower():
        return "no network: the search engines' names could not be resolved (DNS)"
    detail = detail if len(detail) <= 160 else detail[:157] + "..."
    if isinstance(error, TimeoutException):
        return f"the search engines timed out ({detail})"
    if _looks_rate_limited(error):
        return f"the search engines are rate-limiting us ({detail})"
    return f"no search engine answered ({detail})"
