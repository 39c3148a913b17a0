"""Web search: DuckDuckGo (through ddgs) for links, then fetch, extract and rank the pages.

`ddgs_text` is the one seam to the search engines; tests replace it with monkeypatch and serve
the pages from 127.0.0.1. Pages are fetched concurrently with one httpx client; a page that
cannot be fetched or read is reported as skipped, and its search snippet stands in for it.
Not here yet (a later issue): the SSRF guard against private addresses and the page cache.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from ddgs.exceptions import DDGSException, RatelimitException, TimeoutException
from protego import Protego

from backends.search.extract import (
    ExtractedDocument,
    ExtractionError,
    document_kind,
    extract_document,
    media_type,
)
from backends.search.passages import rank_passages, split_passages
from backends.search.types import Passage, SearchOutcome, SkippedSource

DDGS_TIMEOUT_S = 10
DEFAULT_USER_AGENT = "ttdr/0.1 (+research agent)"
PASSAGES_PER_PAGE = 2  # so one long page cannot crowd out every other source
MAX_REDIRECTS = 5
_ALLOWED_MEDIA_TYPES = frozenset(
    {
        "",  # no Content-Type: let extraction sniff the bytes
        "text/html",
        "application/xhtml+xml",
        "application/pdf",
        "application/x-pdf",
        "application/octet-stream",  # how many servers label PDFs; extraction checks the bytes
        "text/plain",
        "text/markdown",
        "text/x-markdown",
    }
)
_RATE_LIMIT_SIGNS = ("ratelimit", "rate limit", "429", "too many requests")


def ddgs_text(query: str, max_results: int) -> list[dict[str, Any]]:
    """Search results as dicts with `title`, `href` and `body` (the snippet)."""
    from ddgs import DDGS

    return DDGS(timeout=DDGS_TIMEOUT_S).text(query, max_results=max_results)


class WebSearchError(Exception):
    """The search engines could not be asked (offline, blocked, timed out); says why."""


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


class _Skip(Exception):
    """A page that yields no text; the message is the user-facing reason."""


class WebSearch:
    """Search the web and return the passages of the result pages that best match the query."""

    def __init__(
        self,
        fetch_timeout_s: float = 15.0,
        max_bytes: int = 5_000_000,
        user_agent: str = DEFAULT_USER_AGENT,
        *,
        results_per_query: int = 8,
        max_concurrency: int = 8,
        retries: int = 2,
        retry_backoff_s: float = 1.0,
        respect_robots: bool = True,
    ) -> None:
        self.fetch_timeout_s = fetch_timeout_s
        self.max_bytes = max_bytes
        self.user_agent = user_agent
        self.results_per_query = results_per_query
        self.max_concurrency = max_concurrency
        self.retries = retries
        self.retry_backoff_s = retry_backoff_s
        self.respect_robots = respect_robots
        self._robots: dict[str, Callable[[str], str | None]] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._robots_guard = threading.Lock()

    def search(self, query: str, k: int = 8) -> SearchOutcome:
        """Raises `WebSearchError` when the search engines fail; a page that fails is skipped."""
        outcome = SearchOutcome(backend="web")
        results = self._find(query)
        if not results:
            outcome.warnings.append(f"web search found nothing for {query!r}")
            return outcome
        candidates: list[_Candidate] = []
        with (
            self._client() as client,
            ThreadPoolExecutor(min(self.max_concurrency, len(results))) as pool,
        ):
            pages = list(pool.map(lambda result: self._read(client, result), results))
        for result, page in zip(results, pages, strict=True):
            if isinstance(page, _Skip):
                outcome.skipped.append(SkippedSource(result.url, str(page)))
                if result.snippet.strip():
                    candidates.append(_Candidate(result.url, result.title, result.snippet, True))
                continue
            url, document = page
            title = document.title or result.title
            candidates.extend(
                _Candidate(url, title, span.text, False) for span in split_passages(document.text)
            )
        outcome.passages = _best_passages(query, candidates, k)
        return outcome

    def _find(self, query: str) -> list[_SearchResult]:
        """Ask the search engines, retrying what looks like rate limiting; dedupe by URL."""
        for attempt in range(self.retries + 1):
            try:
                raw = ddgs_text(query, self.results_per_query)
                break
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
        for item in raw:
            url = str(item.get("href") or item.get("url") or "").strip()
            if urlsplit(url).scheme not in {"http", "https"}:
                continue
            title = str(item.get("title") or "").strip()
            snippet = str(item.get("body") or "").strip()
            results.setdefault(normalise_url(url), _SearchResult(url, title, snippet))
        return list(results.values())

    def _read(
        self, client: httpx.Client, result: _SearchResult
    ) -> tuple[str, ExtractedDocument] | _Skip:
        """Fetch and extract one page: (final URL, document), or the reason it was skipped."""
        try:
            if self.respect_robots and (reason := self._robots_refusal(client, result.url)):
                raise _Skip(reason)
            url, content_type, data = self._fetch(client, result.url)
            document = extract_document(
                data, content_type=content_type, name=urlsplit(url).path, url=url
            )
        except _Skip as skip:
            return skip
        except ExtractionError as error:
            return _Skip(error.reason)
        except httpx.TooManyRedirects:
            return _Skip(f"more than {MAX_REDIRECTS} redirects")
        except httpx.TimeoutException:
            return _Skip(f"timed out after {self.fetch_timeout_s:g} s")
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as error:
            return _Skip(f"fetch failed ({type(error).__name__}: {error})")
        return url, document

    def _fetch(self, client: httpx.Client, url: str) -> tuple[str, str, bytes]:
        """Stream the body up to `max_bytes` within `fetch_timeout_s` overall."""
        deadline = time.monotonic() + self.fetch_timeout_s
        with client.stream("GET", url) as response:
            if response.status_code >= 300:
                raise _Skip(f"HTTP {response.status_code}")
            content_type = response.headers.get("content-type", "")
            mime = media_type(content_type)
            if mime not in _ALLOWED_MEDIA_TYPES:
                raise _Skip(f"unsupported content type {mime}")
            body = bytearray()
            truncated = False
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    truncated = True
                    break
                if time.monotonic() > deadline:
                    raise _Skip(f"timed out after {self.fetch_timeout_s:g} s")
            final_url = str(response.url)
        data = bytes(body[: self.max_bytes])
        # A cut HTML page is still readable; a cut PDF is not.
        is_pdf = data.startswith(b"%PDF-") or document_kind(content_type, final_url) == "pdf"
        if truncated and is_pdf:
            raise _Skip(f"PDF larger than {self.max_bytes:,} bytes")
        return final_url, content_type, data

    def _robots_refusal(self, client: httpx.Client, url: str) -> str | None:
        """Why robots.txt forbids `url`, or None; parsed once per host and kept."""
        parts = urlsplit(url)
        host = f"{parts.scheme}://{parts.netloc}"
        with self._robots_guard:
            lock = self._robots_locks.setdefault(host, threading.Lock())
        with lock:
            if host not in self._robots:
                self._robots[host] = self._load_robots(client, host)
        return self._robots[host](url)

    def _load_robots(self, client: httpx.Client, host: str) -> Callable[[str], str | None]:
        # RFC 9309: a 4xx robots.txt allows everything; a 5xx one disallows everything.
        try:
            response = client.get(f"{host}/robots.txt", timeout=min(5.0, self.fetch_timeout_s))
        except httpx.HTTPError:
            return lambda url: None  # the page fetch will report the real network error
        if response.status_code >= 500:
            reason = f"robots.txt unavailable (HTTP {response.status_code})"
            return lambda url: reason
        if response.status_code >= 400 or not response.text.strip():
            return lambda url: None
        rules = Protego.parse(response.text)
        user_agent = self.user_agent
        return lambda url: None if rules.can_fetch(url, user_agent) else "disallowed by robots.txt"

    def _client(self) -> httpx.Client:
        return httpx.Client(
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
            timeout=httpx.Timeout(self.fetch_timeout_s, connect=min(5.0, self.fetch_timeout_s)),
            headers={
                "User-Agent": self.user_agent,
                "Accept": "text/html,application/xhtml+xml,application/pdf,text/plain;q=0.9,"
                "*/*;q=0.5",
            },
        )


def normalise_url(url: str) -> str:
    """Key for deduplication: scheme and host lower-cased, default port, fragment and trailing
    slash dropped (`HTTPS://Ex.org:443/a/#x` and `https://ex.org/a` are one page)."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if parts.port and (scheme, parts.port) not in {("http", 80), ("https", 443)}:
        host = f"{host}:{parts.port}"
    return urlunsplit((scheme, host, parts.path.rstrip("/") or "/", parts.query, ""))


def _best_passages(query: str, candidates: list[_Candidate], k: int) -> list[Passage]:
    """Rank every page passage and snippet together; keep the best k with at most two per page.
    Snippets that share no word with the query still come last: the engine chose them."""
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
        chosen.append(Passage(candidate.url, candidate.title, candidate.text, score, "web"))

    ranked = rank_passages(query, [(c.title, c.text) for c in candidates])
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
