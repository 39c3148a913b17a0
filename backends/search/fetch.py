"""The fetcher: reads web pages politely, safely and within limits, once per run.

One `httpx.AsyncClient` over a `GuardedTransport` (public addresses only, see guard.py).
- Proxies: HTTPS_PROXY / HTTP_PROXY / ALL_PROXY and NO_PROXY are honoured when `trust_env`
  (the default); the guard routes to the proxy after vetting the host, so httpx's own
  environment handling (which would mount proxy transports around the guard) stays off.
- Concurrency: at most `max_concurrency` requests at once, at most `per_host_concurrency` to
  one host name.
- Time: a connect timeout, a read timeout (between bytes) and a total limit per page that
  covers redirects and retries.
- Size: the body is streamed and cut at `max_bytes` (the rest is never read). A cut HTML or
  text page is still read; a cut PDF is skipped (its text is at the end of the file).
- Content types: HTML, PDF and plain text (plus unlabelled bytes, which extraction sniffs).
- Redirects: followed by hand, at most `max_redirects`, each hop vetted by the guard and by
  robots.txt again.
- robots.txt: fetched once per origin and honoured (protego); a 4xx robots.txt allows all, a
  5xx one disallows all (RFC 9309).
- Retries: 429 and 5xx answers are retried with exponential backoff, honouring Retry-After
  (capped at `max_retry_wait_s` and never past the page's time limit).
- Memo and cache: `read(url)` fetches each normalised URL at most once in the fetcher's life
  (one research run), even when asked concurrently; with a `PageCache`, pages read in earlier
  runs within the cache's TTL are not fetched at all.

A fetcher belongs to one event loop (its client and semaphores bind to the loop on first use).
Every failure becomes a `SkippedSource` with a short reason and a category.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import sqlite3
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx
from protego import Protego

from backends.search.extract import ExtractionError, document_kind, extract_document, media_type
from backends.search.guard import AddressRefusedError, GuardedTransport, ProxyFor, Resolver
from backends.search.page_cache import CachedPage, PageCache
from backends.search.types import SkipCategory, SkippedSource
from backends.search.urls import normalise_url

DEFAULT_USER_AGENT = "ttdr/0.1 (+research agent)"
ALLOWED_MEDIA_TYPES = frozenset(
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
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
ROBOTS_MAX_BYTES = 500_000  # what Google reads of a robots.txt
_ACCEPT = "text/html,application/xhtml+xml,application/pdf,text/plain;q=0.9,*/*;q=0.5"

_log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[object]]


@dataclass(frozen=True)
class FetchSettings:
    max_concurrency: int = 8
    per_host_concurrency: int = 2
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 10.0
    total_timeout_s: float = 15.0
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    user_agent: str = DEFAULT_USER_AGENT
    respect_robots: bool = True
    retries: int = 2
    retry_backoff_s: float = 1.0
    max_retry_wait_s: float = 10.0
    allow_loopback: bool = False
    trust_env: bool = True  # HTTPS_PROXY, HTTP_PROXY, ALL_PROXY, NO_PROXY


def environment_proxies() -> ProxyFor | None:
    """The proxy for a (scheme, host) from the environment, as curl and httpx read it (upper
    or lower case names; NO_PROXY host suffixes, `*` for all); None when no proxy is set."""
    proxies = urllib.request.getproxies_environment()
    if not any(proxies.get(key) for key in ("http", "https", "all")):
        return None

    def proxy_for(scheme: str, host: str) -> str | None:
        if proxies.get("no") and urllib.request.proxy_bypass_environment(host, proxies):
            return None
        proxy = proxies.get(scheme) or proxies.get("all")
        if not proxy:
            return None
        return proxy if "://" in proxy else f"http://{proxy}"  # `proxy:3128`, as curl takes it

    return proxy_for


@dataclass(frozen=True)
class FetchedBody:
    """The bytes of a page: `url` is where they came from after redirects."""

    url: str
    content_type: str
    data: bytes
    truncated: bool


@dataclass(frozen=True)
class Page:
    """A page read and extracted; `url` is where it was read from after redirects."""

    url: str
    title: str
    text: str
    published: str | None = None
    language: str | None = None
    content_type: str = ""
    truncated: bool = False
    from_cache: bool = False


class FetchSkip(Exception):
    """Why a page gave no bytes; `reason` is short and user-facing."""

    def __init__(self, reason: str, category: SkipCategory) -> None:
        super().__init__(reason)
        self.reason = reason
        self.category = category


class Fetcher:
    def __init__(
        self,
        settings: FetchSettings | None = None,
        *,
        cache: PageCache | None = None,
        resolver: Resolver | None = None,
        sleep: Sleep | None = None,
    ) -> None:
        self.settings = settings or FetchSettings()
        self.cache = cache
        self.resolver = resolver
        self.sleep: Sleep = sleep or asyncio.sleep
        self._http: httpx.AsyncClient | None = None
        self._slots: asyncio.Semaphore | None = None
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        self._robots: dict[str, asyncio.Task[Callable[[str], str | None]]] = {}
        self._reads: dict[str, asyncio.Task[Page | SkippedSource]] = {}

    async def read_many(self, urls: Iterable[str]) -> list[Page | SkippedSource]:
        """`read` every URL concurrently (within the limits); results in the order given."""
        return list(await asyncio.gather(*(self.read(url) for url in urls)))

    async def read(self, url: str) -> Page | SkippedSource:
        """The page at `url`, read and extracted, or why it was skipped. Each normalised URL is
        fetched at most once per fetcher: later and concurrent calls share the first result."""
        key = normalise_url(url)
        task = self._reads.get(key)
        if task is None:
            task = self._reads[key] = asyncio.ensure_future(self._read(url))
        return await asyncio.shield(task)

    async def fetch(self, url: str) -> FetchedBody:
        """The bytes at `url` (no memo, no cache); raises `FetchSkip`.

        The page's time limit starts when its first request gets a connection slot: time spent
        queueing behind other pages does not count against it.
        """
        total = self.settings.total_timeout_s
        try:
            async with asyncio.timeout(None) as budget:
                return await self._fetch(url, _Deadline(budget, total))
        except TimeoutError:
            raise FetchSkip(f"timed out after {total:g} s", "timeout") from None
        except AddressRefusedError as error:
            raise FetchSkip(error.reason, "address") from error
        except httpx.ConnectTimeout:
            raise FetchSkip(
                f"timed out connecting ({self.settings.connect_timeout_s:g} s)", "timeout"
            ) from None
        except httpx.TimeoutException:
            raise FetchSkip(
                f"timed out waiting for data ({self.settings.read_timeout_s:g} s)", "timeout"
            ) from None
        except (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError) as error:
            raise FetchSkip(f"fetch failed ({type(error).__name__}: {error})", "network") from error

    async def aclose(self) -> None:
        for task in self._reads.values():
            task.cancel()
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    async def _read(self, url: str) -> Page | SkippedSource:
        cached = await self._cache_call("get", url)
        if isinstance(cached, CachedPage):
            return Page(
                cached.url,
                cached.title,
                cached.text,
                cached.published,
                cached.language,
                cached.content_type,
                from_cache=True,
            )
        try:
            body = await self.fetch(url)
        except FetchSkip as skip:
            return SkippedSource(url, skip.reason, skip.category)
        except Exception as error:  # one page must never fail a whole search
            return SkippedSource(url, f"fetch failed ({type(error).__name__}: {error})", "network")
        try:
            # Extraction is CPU work: in a thread, so other pages keep downloading meanwhile.
            document = await asyncio.to_thread(
                extract_document,
                body.data,
                content_type=body.content_type,
                name=urlsplit(body.url).path,
                url=body.url,
            )
        except ExtractionError as error:
            return SkippedSource(url, error.reason, "not_text")
        except Exception as error:  # extraction libraries can fail in unforeseen ways
            return SkippedSource(url, f"unreadable ({type(error).__name__})", "not_text")
        page = Page(
            body.url,
            document.title,
            document.text,
            document.published,
            document.language,
            media_type(body.content_type),
            body.truncated,
        )
        entry = CachedPage(
            page.url,
            page.title,
            page.text,
            page.published,
            page.language,
            page.content_type,
            time.time(),
        )
        await self._cache_call("put", url, entry)
        return page

    async def _cache_call(self, method: str, *args: object) -> object:
        """A page cache call in a thread; a cache that fails (a locked or read-only database)
        only costs a fetch, so its errors are logged and otherwise ignored."""
        if self.cache is None:
            return None
        try:
            return await asyncio.to_thread(getattr(self.cache, method), *args)
        except sqlite3.Error as error:
            _log.warning("page cache %s failed: %s", method, error)
            return None

    async def _fetch(self, url: str, deadline: _Deadline) -> FetchedBody:
        current = url
        for _hop in range(self.settings.max_redirects + 1):
            scheme = urlsplit(current).scheme.lower()
            if scheme not in ("http", "https"):
                raise FetchSkip(f"refused URL scheme {scheme!r}", "address")
            if self.settings.respect_robots and (reason := await self._robots_refusal(current)):
                raise FetchSkip(reason, "robots")
            outcome = await self._get_with_retries(current, deadline)
            if isinstance(outcome, FetchedBody):
                return outcome
            current = outcome  # a redirect
        raise FetchSkip(f"more than {self.settings.max_redirects} redirects", "network")

    async def _get_with_retries(self, url: str, deadline: _Deadline) -> FetchedBody | str:
        """The body, or the URL a redirect points to; retries 429 and 5xx."""
        settings = self.settings
        for attempt in range(settings.retries + 1):
            async with self._slot(url, deadline), self._client().stream("GET", url) as response:
                status = response.status_code
                if status in REDIRECT_STATUSES:
                    location = response.headers.get("location", "").strip()
                    if not location:
                        raise FetchSkip(f"HTTP {status} without a Location", "http")
                    return urljoin(url, location)
                if status in RETRY_STATUSES:
                    wait = _retry_after(response.headers.get("retry-after"))
                elif status >= 300:
                    raise FetchSkip(f"HTTP {status}", "http")
                else:
                    return await self._body(url, response)
            tries = f"{attempt + 1} {'try' if attempt == 0 else 'tries'}"
            if attempt == settings.retries:
                raise FetchSkip(f"HTTP {status} after {tries}", "http")
            if wait is None:
                wait = settings.retry_backoff_s * 2**attempt
            wait = min(wait, settings.max_retry_wait_s)
            if wait > deadline.remaining():
                raise FetchSkip(
                    f"HTTP {status} after {tries} (waiting {wait:g} s more would pass "
                    f"the {settings.total_timeout_s:g} s limit)",
                    "http",
                )
            await self.sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _body(self, url: str, response: httpx.Response) -> FetchedBody:
        """Stream the body up to `max_bytes`; what is past the limit is never read."""
        limit = self.settings.max_bytes
        content_type = response.headers.get("content-type", "")
        mime = media_type(content_type)
        if mime not in ALLOWED_MEDIA_TYPES:
            raise FetchSkip(f"unsupported content type {mime}", "not_text")
        is_pdf = document_kind(content_type, url) == "pdf"
        declared = _int(response.headers.get("content-length"))
        if is_pdf and declared is not None and declared > limit:
            raise FetchSkip(f"PDF larger than {limit:,} bytes", "too_large")
        body = bytearray()
        truncated = False
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > limit:
                truncated = True
                del body[limit:]
                break
        data = bytes(body)
        if truncated and (is_pdf or data.startswith(b"%PDF-")):
            raise FetchSkip(f"PDF larger than {limit:,} bytes", "too_large")
        return FetchedBody(url, content_type, data, truncated)

    async def _robots_refusal(self, url: str) -> str | None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        task = self._robots.get(origin)
        if task is None:
            task = self._robots[origin] = asyncio.ensure_future(self._load_robots(origin))
        allowed = await asyncio.shield(task)
        return allowed(url)

    async def _load_robots(self, origin: str) -> Callable[[str], str | None]:
        """RFC 9309: a 4xx robots.txt allows everything, a 5xx one disallows everything. A
        robots.txt that cannot be fetched at all allows: the page fetch then says why."""
        url = f"{origin}/robots.txt"
        try:
            async with asyncio.timeout(min(5.0, self.settings.total_timeout_s)):
                for _hop in range(self.settings.max_redirects + 1):
                    async with self._slot(url), self._client().stream("GET", url) as response:
                        status = response.status_code
                        location = response.headers.get("location", "")
                        if status in REDIRECT_STATUSES and location:
                            url = urljoin(url, location)
                            continue
                        data = bytearray()
                        if status < 300:
                            async for chunk in response.aiter_bytes():
                                data += chunk
                                if len(data) >= ROBOTS_MAX_BYTES:
                                    break
                    break
                else:
                    return _allow_all
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL, AddressRefusedError):
            return _allow_all
        if status >= 500:
            reason = f"robots.txt unavailable (HTTP {status})"
            return lambda _url: reason
        text = bytes(data[:ROBOTS_MAX_BYTES]).decode("utf-8", errors="replace")
        if status >= 300 or not text.strip():
            return _allow_all
        rules = Protego.parse(text)
        agent = self.settings.user_agent
        return lambda page: None if rules.can_fetch(page, agent) else "disallowed by robots.txt"

    @asynccontextmanager
    async def _slot(self, url: str, deadline: _Deadline | None = None) -> AsyncIterator[None]:
        """Hold a per-host slot, then a global one (in that order, so a busy host cannot tie up
        global slots while its requests wait); the first slot starts the page's clock."""
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.settings.max_concurrency)
        host = (urlsplit(url).hostname or "").lower()
        host_slots = self._host_slots.get(host)
        if host_slots is None:
            host_slots = self._host_slots[host] = asyncio.Semaphore(
                self.settings.per_host_concurrency
            )
        async with host_slots, self._slots:
            if deadline is not None:
                deadline.start()
            yield

    def _client(self) -> httpx.AsyncClient:
        if self._http is None:
            s = self.settings
            per_host = max(1, s.per_host_concurrency)
            transport = GuardedTransport(
                allow_loopback=s.allow_loopback,
                resolver=self.resolver,
                limits=httpx.Limits(max_connections=per_host, max_keepalive_connections=per_host),
                proxy_for=environment_proxies() if s.trust_env else None,
            )
            self._http = httpx.AsyncClient(
                transport=transport,
                follow_redirects=False,
                trust_env=False,  # httpx's proxies would go around the guard; it routes them
                timeout=httpx.Timeout(
                    connect=min(s.connect_timeout_s, s.total_timeout_s),
                    read=min(s.read_timeout_s, s.total_timeout_s),
                    write=min(s.read_timeout_s, s.total_timeout_s),
                    pool=s.total_timeout_s,
                ),
                headers={"User-Agent": s.user_agent, "Accept": _ACCEPT},
            )
        return self._http


class _Deadline:
    """A page's time limit, started on demand; `budget` is the asyncio timeout enforcing it."""

    def __init__(self, budget: asyncio.Timeout, seconds: float) -> None:
        self.budget = budget
        self.seconds = seconds
        self.ends: float | None = None

    def start(self) -> None:
        if self.ends is None:
            loop = asyncio.get_running_loop()
            self.ends = loop.time() + self.seconds
            self.budget.reschedule(self.ends)

    def remaining(self) -> float:
        if self.ends is None:
            return self.seconds
        return self.ends - asyncio.get_running_loop().time()


def _allow_all(_url: str) -> None:
    return None


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header: a number of seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None
