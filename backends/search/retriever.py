"""One `search(query, k)` for the agent, whatever the mode: web (DuckDuckGo, or a SearXNG
instance for `searxng`), local index, or web with a visible fallback to the local index
(`auto`). A run given documents or a collection searches only those.

Failures that leave nothing to search raise `RetrievalUnavailableError` with a message the CLI
prints as is; `preflight` raises the same errors before a long run rather than halfway through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit
from urllib.request import url2pathname

from backends.search.local_index import LocalIndex
from backends.search.types import SearchOutcome
from backends.search.web import WebSearch, WebSearchError
from ttdr.errors import RetrievalUnavailableError
from ttdr.models import SearchMode

DEFAULT_K = 8
# After a web failure in `auto`, go straight to the local index for a while: when offline, every
# query would otherwise wait for the search engines to time out first.
WEB_RETRY_AFTER_S = 120.0

_EMPTY_INDEX = (
    "The local index is empty: add documents with `ttdr index add PATH` or pass --docs PATH"
)
WEB_MODES = ("web", "searxng")  # modes that search the web and nothing else


class Retriever:
    """Searches according to `mode`; `web` is created on demand unless given (tests give one)."""

    def __init__(
        self,
        mode: SearchMode,
        index: LocalIndex,
        web: WebSearch | None = None,
        *,
        scope: Sequence[Path] = (),
        collection: str | None = None,
    ) -> None:
        """`scope`: the documents this run was given; `collection`: the named collection it
        searches (local_index.py). Local search looks only under them, and `auto` then
        searches them rather than the web (the user said where to look)."""
        if mode not in ("web", "local", "auto", "searxng"):
            raise ValueError(f"unknown search mode {mode!r}: use web, local, auto or searxng")
        self.scope = [Path(p) for p in scope]
        self.collection = collection or None
        if mode == "auto" and (self.scope or self.collection):
            mode = "local"
        if mode == "searxng" and web is None:
            raise ValueError("mode searxng needs a WebSearch(engine=SearxngEngine(url))")
        self.mode: SearchMode = mode
        self.index = index
        self.web = web if web is not None or mode == "local" else WebSearch()
        self._lock = threading.Lock()
        self._remembered: dict[str, tuple[int, SearchOutcome]] = {}
        self._web_failure: tuple[float, str] | None = None

    def close(self) -> None:
        """Stop the web fetcher's thread and connections (a UI server runs many researches)."""
        if self.web is not None:
            self.web.close()

    def search(self, query: str, k: int = DEFAULT_K, *, per_document: int = 2) -> SearchOutcome:
        """The best `k` passages; a local document gives at most `per_document` of them."""
        if self.mode == "local":
            return self._search_local(query, k, per_document)
        try:
            outcome = self._search_web(query, k)
        except WebSearchError as error:
            if self.mode in WEB_MODES:
                raise RetrievalUnavailableError(_web_failed(str(error))) from error
            return self._fall_back(query, k, str(error), per_document)
        if self.mode == "auto" and not outcome.passages and self.index.count():
            local = self._search_local(query, k, per_document)
            local.skipped = outcome.skipped
            local.warnings = [*outcome.warnings, "searched the local index instead"]
            return local
        return outcome

    def page_passages(self, query: str, url: str, k: int) -> SearchOutcome:
        """The best `k` passages of the page at `url` (found by an earlier search) for `query`:
        a question about one feature is usually answered across one manual page, more of it
        than a whole-corpus ranking ever reaches."""
        if urlsplit(url).scheme == "file":
            path = Path(url2pathname(urlsplit(url).path))
            if self.scope and not any(path.is_relative_to(root.resolve()) for root in self.scope):
                return SearchOutcome(backend="local")
            passages = self.index.search(
                query, k, scope=[path], per_document=k, collection=self.collection
            )
            return SearchOutcome(passages=passages, backend="local")
        if self.web is None:
            return SearchOutcome()
        return self.web.page_passages(query, url, k)

    def preflight(self, question: str) -> list[str]:
        """Check that searching can work at all; returns warnings worth showing before the run.

        Costs one real web search when the web is the only source; its outcome is kept, so the
        run's first search for the same question does not repeat it.
        """
        if self.mode == "local":
            if self.collection and not self.index.count(collection=self.collection):
                raise RetrievalUnavailableError(_empty_collection(self.collection))
            if not self.index.count():
                raise RetrievalUnavailableError(_EMPTY_INDEX)
            return []
        if self.mode == "auto" and self.index.count():
            return []  # if the web fails, the local index answers
        try:
            outcome = self._search_web(question, DEFAULT_K)
        except WebSearchError as error:
            if self.mode in WEB_MODES:
                raise RetrievalUnavailableError(_web_failed(str(error))) from error
            raise RetrievalUnavailableError(_nothing_to_search(str(error))) from error
        return list(outcome.warnings)

    def _search_web(self, query: str, k: int) -> SearchOutcome:
        with self._lock:
            remembered = self._remembered.get(query)
            failure = self._web_failure
        if remembered is not None and remembered[0] >= k:
            return _copy(remembered[1], k)
        if self.mode == "auto" and failure and time.monotonic() - failure[0] < WEB_RETRY_AFTER_S:
            ago = time.monotonic() - failure[0]
            raise WebSearchError(f"not retried: it failed {ago:.0f}s ago, {failure[1]}")
        assert self.web is not None  # only mode "local" has no web search
        try:
            outcome = self.web.search(query, k)
        except WebSearchError as error:
            with self._lock:
                self._web_failure = (time.monotonic(), str(error))
            raise
        with self._lock:
            self._web_failure = None
            self._remembered[query] = (k, outcome)
        return _copy(outcome, k)

    def _search_local(self, query: str, k: int, per_document: int = 2) -> SearchOutcome:
        passages = self.index.search(
            query, k, scope=self.scope, per_document=per_document, collection=self.collection
        )
        return SearchOutcome(passages=passages, backend="local")

    def _fall_back(self, query: str, k: int, why: str, per_document: int) -> SearchOutcome:
        if not self.index.count():
            raise RetrievalUnavailableError(_nothing_to_search(why))
        outcome = self._search_local(query, k, per_document)
        outcome.warnings.append(f"web search failed ({why}); searched the local index instead")
        return outcome


def _copy(outcome: SearchOutcome, k: int) -> SearchOutcome:
    """A copy the caller may change without changing what is remembered."""
    return replace(
        outcome,
        passages=outcome.passages[:k],
        skipped=list(outcome.skipped),
        warnings=list(outcome.warnings),
    )


def _empty_collection(name: str) -> str:
    return (
        f"The collection {name!r} has no documents: add some with `ttdr index add PATH "
        f"--collection {name}` (`ttdr index list` shows the collections)."
    )


def _web_failed(why: str) -> str:
    return (
        f"Web search failed: {why}. Check your network, or use --search local with documents "
        "indexed by `ttdr index add PATH`."
    )


def _nothing_to_search(why: str) -> str:
    return (
        f"Web search failed ({why}) and the local index is empty, so there is nothing to "
        "search. Check your network, or add documents with `ttdr index add PATH` (or pass "
        "--docs PATH) and use --search local."
    )
