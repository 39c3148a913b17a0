"""SearXNG as the search engine (`--search searxng`, `TTDR_SEARXNG_URL`): a self-hosted
metasearch instance asked through its JSON API, `GET /search?q=...&format=json`.

It only supplies the links: `SearxngEngine` is a `WebSearch` engine, so its results are
fetched, extracted and ranked exactly as DuckDuckGo's are (web.py), through the same fetcher
and address guard. The instance itself is the user's own choice of server and usually runs on
their machine or network, so the guard (which refuses private addresses for pages found on the
web) does not apply to it.

An instance answers JSON only when its settings.yml lists `json` under `search.formats`; the
stock setting is HTML only and answers 403, which the error here says how to fix.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlsplit

import httpx

from backends.search.web import SearchRateLimited, WebSearchError
from ttdr.errors import RetrievalUnavailableError

TIME_RANGES = {"d": "day", "w": "week", "m": "month", "y": "year"}  # ddgs' timelimit → SearXNG


class SearxngEngine:
    """Links from the SearXNG instance at `base_url`, in the shape `ddgs_text` returns them
    (`title`, `href`, `body`). `region` (ddgs' `de-de` form) becomes SearXNG's `language`,
    `timelimit` (d, w, m, y) its `time_range`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        region: str | None = None,
        timelimit: str | None = None,
        trust_env: bool = True,
        user_agent: str = "ttdr",
    ) -> None:
        self.base_url = check_searxng_url(base_url)
        self.params: dict[str, str] = {"format": "json"}
        if region and region != "wt-wt":
            country, _, language = region.partition("-")
            self.params["language"] = f"{language}-{country.upper()}" if language else country
        if timelimit in TIME_RANGES:
            self.params["time_range"] = TIME_RANGES[timelimit]
        self._client_options: dict[str, Any] = {
            "timeout": timeout_s,
            "trust_env": trust_env,
            "headers": {"User-Agent": user_agent, "Accept": "application/json"},
            "follow_redirects": True,
        }
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def __call__(self, query: str, max_results: int) -> list[dict[str, Any]]:
        where = f"SearXNG at {self.base_url}"
        try:
            response = self._connected().get(
                f"{self.base_url}/search", params={"q": query, **self.params}
            )
        except httpx.TimeoutException as error:
            raise WebSearchError(f"{where} timed out ({type(error).__name__})") from error
        except httpx.HTTPError as error:
            raise WebSearchError(
                f"{where} did not answer ({error or type(error).__name__}): is it running, and "
                "is TTDR_SEARXNG_URL its address?"
            ) from error
        if response.status_code == 429:
            raise SearchRateLimited(f"{where} is rate-limiting us (HTTP 429)")
        if response.status_code == 403:
            raise WebSearchError(
                f"{where} refused the JSON API (HTTP 403): add `json` under `search: formats:` "
                "in its settings.yml and restart it"
            )
        if response.status_code != 200:
            raise WebSearchError(f"{where} answered HTTP {response.status_code}")
        try:
            results = response.json().get("results")
        except (ValueError, AttributeError) as error:
            raise WebSearchError(
                f"{where} did not answer JSON: is TTDR_SEARXNG_URL the instance's address?"
            ) from error
        if not isinstance(results, list):
            raise WebSearchError(f"{where} answered JSON without a results list")
        return [
            {
                "title": str(item.get("title") or ""),
                "href": str(item.get("url") or ""),
                "body": str(item.get("content") or ""),
            }
            for item in results[:max_results]
            if isinstance(item, dict)
        ]

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _connected(self) -> httpx.Client:
        """One connection pool for a run's searches (parallel branches share it), opened on
        first use and again after `close`."""
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(**self._client_options)
            return self._client


def check_searxng_url(url: str | None) -> str:
    """`url` without a trailing slash; a missing or malformed one is a
    `RetrievalUnavailableError` saying what to set (before any search is tried)."""
    text = (url or "").strip().rstrip("/")
    if not text:
        raise RetrievalUnavailableError(
            "--search searxng needs the instance's address: set TTDR_SEARXNG_URL, e.g. "
            "TTDR_SEARXNG_URL=http://localhost:8888"
        )
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise RetrievalUnavailableError(
            f"TTDR_SEARXNG_URL={text!r} is not an http(s) address, e.g. http://localhost:8888"
        )
    return text
