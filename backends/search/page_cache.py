"""The page cache: pages read from the web, kept in ttdr's SQLite file for a while.

Keyed by the normalised URL (`urls.normalise_url`), so `HTTPS://Ex.org/a/#x` and
`https://ex.org/a` are one entry. It stores the extracted document, not the bytes: a cached page
costs neither a fetch nor another extraction. Entries older than `ttl_s` are not returned and
are deleted now and then. It owns only tables named `search_page_cache*`.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from backends.search.urls import normalise_url

DEFAULT_TTL_S = 24 * 3600.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS search_page_cache (
    url_key TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    published TEXT,
    language TEXT,
    content_type TEXT NOT NULL,
    fetched_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS search_page_cache_fetched_at ON search_page_cache (fetched_at);
"""


@dataclass(frozen=True)
class CachedPage:
    """A page as read: `url` is where it was finally read from (after redirects)."""

    url: str
    title: str
    text: str
    published: str | None
    language: str | None
    content_type: str
    fetched_at: float


class PageCache:
    """`get(url)` / `put(url, page)` on the SQLite file `db_path`, safe across threads (one
    connection per call)."""

    def __init__(
        self,
        db_path: Path | str,
        ttl_s: float = DEFAULT_TTL_S,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.db_path = Path(db_path)
        self.ttl_s = ttl_s
        self.clock = clock
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)
        self.prune()

    def get(self, url: str) -> CachedPage | None:
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT url, title, text, published, language, content_type, fetched_at "
                "FROM search_page_cache WHERE url_key = ? AND fetched_at >= ?",
                (normalise_url(url), self.clock() - self.ttl_s),
            ).fetchone()
        return CachedPage(*row) if row else None

    def put(self, url: str, page: CachedPage) -> None:
        """Store `page` under `url` (the address it was asked for) and under `page.url` (where
        a redirect led), so either address finds it."""
        keys = dict.fromkeys((normalise_url(url), normalise_url(page.url)))
        with closing(self._connect()) as db, db:
            db.executemany(
                "INSERT OR REPLACE INTO search_page_cache "
                "(url_key, url, title, text, published, language, content_type, fetched_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        key,
                        page.url,
                        page.title,
                        page.text,
                        page.published,
                        page.language,
                        page.content_type,
                        page.fetched_at,
                    )
                    for key in keys
                ],
            )

    def prune(self) -> int:
        """Delete expired entries; returns how many."""
        with closing(self._connect()) as db, db:
            cursor = db.execute(
                "DELETE FROM search_page_cache WHERE fetched_at < ?", (self.clock() - self.ttl_s,)
            )
            return cursor.rowcount

    def count(self) -> int:
        with closing(self._connect()) as db:
            return int(db.execute("SELECT count(*) FROM search_page_cache").fetchone()[0])

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=30.0)
        db.execute("PRAGMA busy_timeout = 30000")
        return db
