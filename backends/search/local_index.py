"""The local corpus: the user's documents, split into passages, in SQLite FTS5.

It lives in the same SQLite file as ttdr's run history, so it owns only tables named `index_*`.
Adding is incremental by content hash: re-adding a folder re-reads every file but re-extracts
only those whose bytes changed. One connection per call keeps it safe to use from the agent's
parallel search branches.

Documents can be filed in named collections (`add(path, collection=...)`): a document is indexed
once and may belong to several, and a search given a collection sees only its documents, so a
run scoped to one never answers from another's. Indexes made before collections existed gain
the empty `index_collections` table on open and keep working as they were.

With an `embedder`, every passage also gets a vector (float32 BLOB in `index_vectors`; this
Python's SQLite cannot load sqlite-vec), and search fuses the BM25 ranking with the cosine
ranking by reciprocal rank, as web passages are ranked. Passages indexed while embeddings were
off get their vectors on the next `add` with an embedder, or from `embed_missing()`.

A damaged, unwritable or full index file is the user's to fix: every public method turns such
an SQLite failure into an `IndexDatabaseError` naming the file and what to do, and never
resets the file to make the error go away.
"""

from __future__ import annotations

import functools
import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from backends.search.extract import (
    EXTRACTOR_VERSION,
    SUPPORTED_SUFFIXES,
    ExtractionError,
    extract_document,
)
from backends.search.html_text import headings_before
from backends.search.passages import (
    bm25_score_sql,
    fts_match_query,
    fuse_rankings,
    passage_text,
    split_passages,
)
from backends.search.types import Passage, SkippedSource
from ttdr.errors import DocsPathError, IndexDatabaseError
from ttdr.models import check_collection_name
from ttdr.sqlite_failure import classify, retry_while_locked

if TYPE_CHECKING:
    from backends.search.embeddings import Embedder

MAX_FILE_BYTES = 50_000_000
PASSAGES_PER_DOCUMENT = 2  # so one long document cannot crowd out every other source
HYBRID_DEPTH = 100  # how deep each ranking goes before fusion
_EMBED_BATCH = 256
_BUSY_TIMEOUT_S = 30

_SCHEMA = """
CREATE TABLE IF NOT EXISTS index_documents (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    sha256 TEXT NOT NULL,
    title TEXT NOT NULL,
    chars INTEGER NOT NULL,
    passages INTEGER NOT NULL,
    added_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE VIRTUAL TABLE IF NOT EXISTS index_passages USING fts5(
    title, body, document_id UNINDEXED, start_char UNINDEXED, end_char UNINDEXED,
    tokenize = 'porter unicode61'
);
CREATE TABLE IF NOT EXISTS index_vectors (
    passage_id INTEGER PRIMARY KEY,
    document_id INTEGER NOT NULL,
    vector BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS index_vectors_document ON index_vectors (document_id);
CREATE TABLE IF NOT EXISTS index_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS index_collections (
    name TEXT NOT NULL,
    document_id INTEGER NOT NULL,
    PRIMARY KEY (name, document_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS index_collections_document ON index_collections (document_id);
"""
# 1: documents, passages, vectors; 2: collections. Kept in index_meta as `schema`.
SCHEMA_VERSION = "2"


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _explains_failures(method: Callable[_P, _R]) -> Callable[_P, _R]:
    """SQLite failures the user can act on become an `IndexDatabaseError`; anything else (a
    bug) keeps its traceback."""

    @functools.wraps(method)
    def explained(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return method(*args, **kwargs)
        except sqlite3.Error as exc:
            index = args[0]
            assert isinstance(index, LocalIndex)
            error = explain_failure(index.db_path, exc)
            if error is None:
                raise
            raise error from exc

    return explained


def explain_failure(path: Path, exc: BaseException) -> IndexDatabaseError | None:
    """A one-line error for an SQLite failure on the index file `path`, or None for one that
    is not the user's to fix."""
    failure = classify(exc)
    if failure is None:
        return None
    reason = failure.reason
    messages = {
        "damaged": f"The document index {path} is damaged or not an SQLite database: {reason}. "
        f"It was left as it is: move it aside (e.g. mv {path} {path}.broken) and index your "
        "documents again with `ttdr index add PATH`.",
        "unwritable": f"The document index {path} cannot be opened for writing: {reason}. Check "
        f"that you may write the file and its folder (SQLite keeps {path.name}-wal and "
        f"{path.name}-shm beside it), or set TTDR_HOME to another folder.",
        "full": f"The disk holding the document index {path} is full: {reason}. Free some space "
        "and index again; the documents indexed before are kept.",
        "io": f"The document index {path} could not be read or written: {reason}. Check the "
        "disk it is on.",
        "locked": f"The document index {path} stayed locked by another process for "
        f"{_BUSY_TIMEOUT_S} s: {reason}. Try again when it has finished.",
    }
    return IndexDatabaseError(messages[failure.kind])


class _FileTooLarge(ExtractionError):
    pass


@dataclass
class IndexReport:
    """What one `LocalIndex.add` did; counts are documents."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: list[SkippedSource] = field(default_factory=list)


@dataclass(frozen=True)
class IndexedDocument:
    path: Path
    title: str
    chars: int
    passages: int
    added_at: datetime
    collections: tuple[str, ...] = ()


@dataclass(frozen=True)
class Collection:
    name: str
    documents: int
    passages: int


class LocalIndex:
    """Documents indexed for `--search local` / `auto`, stored in the SQLite file `db_path`."""

    def __init__(self, db_path: Path, *, embedder: Embedder | None = None) -> None:
        self.db_path = Path(db_path)
        self.embedder = embedder
        try:
            self.db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise IndexDatabaseError(
                f"The folder of the document index {self.db_path} cannot be created ({exc}): "
                "check the permissions of its parent folder, or set TTDR_HOME to a folder you "
                "can write."
            ) from exc
        self._create_schema()

    @_explains_failures
    def _create_schema(self) -> None:
        # Processes switching a fresh file to WAL at once can be refused the lock at once
        # rather than after the busy timeout (see ttdr.sqlite_failure), so this retries.
        retry_while_locked(self._create_schema_once, timeout_s=_BUSY_TIMEOUT_S)

    def _create_schema_once(self) -> None:
        with closing(self._connect()) as db:
            db.execute("PRAGMA journal_mode=WAL")
            with db:
                # One writer creates the schema; processes opening a fresh index at once
                # wait here instead of racing (executescript would commit between statements).
                db.execute("BEGIN IMMEDIATE")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                _expire_old_extractions(db)
                db.execute(
                    "INSERT OR REPLACE INTO index_meta (key, value) VALUES ('schema', ?)",
                    (SCHEMA_VERSION,),
                )

    @_explains_failures
    def add(self, path: Path | str, *, collection: str | None = None) -> IndexReport:
        """Index a file, or every supported file under a folder (hidden ones excluded), and
        file each one (new, updated or unchanged) in `collection` when one is named.

        Files with an unsupported suffix are ignored inside folders but reported when named
        directly; unreadable files are reported in `skipped` and do not stop the rest.
        """
        if collection is not None:
            check_collection_name(collection)
        root = _resolve_existing(path)
        report = IndexReport()
        for file in _document_files(root):
            if file.suffix.lower() not in SUPPORTED_SUFFIXES:
                supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
                reason = f"unsupported file type {file.suffix or '(none)'} (supported: {supported})"
                report.skipped.append(SkippedSource(file.as_uri(), reason, "not_text"))
                continue
            try:
                outcome = self._add_file(file)
            except ExtractionError as error:
                category = "too_large" if isinstance(error, _FileTooLarge) else "not_text"
                report.skipped.append(SkippedSource(file.as_uri(), error.reason, category))
                continue
            except OSError as error:
                report.skipped.append(SkippedSource(file.as_uri(), f"cannot read ({error})"))
                continue
            setattr(report, outcome, getattr(report, outcome) + 1)
            if collection is not None:
                self._file_in(collection, file)
        if self.embedder is not None:
            self.embed_missing()
        return report

    @_explains_failures
    def search(
        self,
        query: str,
        k: int = 8,
        *,
        scope: Sequence[Path] = (),
        per_document: int = PASSAGES_PER_DOCUMENT,
        collection: str | None = None,
    ) -> list[Passage]:
        """The `k` best passages for `query`, at most `per_document` per document, best first.

        `scope` (files or folders) and `collection` limit the search to documents under them
        and in it: a run given `--docs A` must not answer from pages indexed for another run
        over B."""
        match = fts_match_query(query)
        if k <= 0 or (match is None and self.embedder is None):
            return []
        prefixes = [_path_prefix(p) for p in scope]
        if self.embedder is not None:
            return self._search_hybrid(query, match, k, prefixes, per_document, collection)
        in_scope, scope_args = _scope_sql(prefixes, collection)
        # bm25() only works in the SELECT that MATCHes, so rank per document one level up.
        sql = f"""
            WITH hits AS MATERIALIZED (
                SELECT rowid AS id, title, body, document_id,
                       {bm25_score_sql("index_passages")} AS score
                FROM index_passages WHERE index_passages MATCH ?
            ), ranked AS (
                SELECT *, ROW_NUMBER() OVER (
                    PARTITION BY document_id ORDER BY score DESC, id
                ) AS nth FROM hits
            )
            SELECT d.path, r.title, r.body, r.score
            FROM ranked AS r JOIN index_documents AS d ON d.id = r.document_id
            WHERE r.nth <= ? {in_scope} ORDER BY r.score DESC, d.path, r.id LIMIT ?
        """
        with closing(self._connect()) as db:
            rows = db.execute(sql, (match, per_document, *scope_args, k)).fetchall()
        return [
            Passage(url=Path(path).as_uri(), title=title, text=body, score=score, kind="local")
            for path, title, body, score in rows
        ]

    def _search_hybrid(
        self,
        query: str,
        match: str | None,
        k: int,
        prefixes: list[str],
        per_document: int,
        collection: str | None = None,
    ) -> list[Passage]:
        """BM25 and cosine rankings, each `HYBRID_DEPTH` deep, fused by reciprocal rank."""
        import numpy as np

        from backends.search.embeddings import DIMENSIONS, similarity_ranking

        assert self.embedder is not None
        query_vector = self.embedder.encode([query])[0]
        with closing(self._connect()) as db:
            in_scope, scope_args = _scope_sql(prefixes, collection)
            documents = f"SELECT id FROM index_documents AS d WHERE 1 {in_scope}"
            lexical: list[int] = []
            if match is not None:
                lexical = [
                    int(row[0])
                    for row in db.execute(
                        f"SELECT rowid, {bm25_score_sql('index_passages')} AS score "
                        "FROM index_passages WHERE index_passages MATCH ? "
                        f"AND document_id IN ({documents}) "
                        "ORDER BY score DESC, rowid LIMIT ?",
                        (match, *scope_args, HYBRID_DEPTH),
                    )
                ]
            rows = db.execute(
                f"SELECT passage_id, vector FROM index_vectors WHERE document_id IN ({documents})",
                scope_args,
            ).fetchall()
            ids = [int(row[0]) for row in rows]
            vectors = (
                np.frombuffer(b"".join(row[1] for row in rows), dtype=np.float32).reshape(
                    -1, DIMENSIONS
                )
                if rows
                else np.zeros((0, DIMENSIONS), dtype=np.float32)
            )
            semantic = [ids[i] for i, _ in similarity_ranking(query_vector, vectors)]
            fused = fuse_rankings(lexical, semantic[:HYBRID_DEPTH])
            details = {
                int(row[0]): row[1:]
                for row in db.execute(
                    "SELECT p.rowid, d.path, p.title, p.body, p.document_id "
                    "FROM index_passages AS p JOIN index_documents AS d ON d.id = p.document_id "
                    f"WHERE p.rowid IN ({','.join('?' * len(fused))})",
                    [passage_id for passage_id, _ in fused],
                )
            }
        passages: list[Passage] = []
        taken: dict[int, int] = {}
        for passage_id, score in fused:
            if passage_id not in details or len(passages) >= k:
                continue
            path, title, body, document_id = details[passage_id]
            if taken.get(document_id, 0) >= per_document:
                continue
            taken[document_id] = taken.get(document_id, 0) + 1
            passages.append(Passage(Path(path).as_uri(), title, body, score, "local"))
        return passages

    @_explains_failures
    def embed_missing(self) -> int:
        """Give every passage without a vector its vector, in batches; returns how many.
        `add` does this itself; call it when embeddings are turned on for an existing index."""
        import numpy as np

        if self.embedder is None:
            return 0
        done = 0
        while True:
            with closing(self._connect()) as db:
                rows = db.execute(
                    "SELECT rowid, document_id, title, body FROM index_passages "
                    "WHERE rowid NOT IN (SELECT passage_id FROM index_vectors) "
                    "ORDER BY rowid LIMIT ?",
                    (_EMBED_BATCH,),
                ).fetchall()
            if not rows:
                return done
            done += len(rows)
            vectors = self.embedder.encode([passage_text(r[2], r[3]) for r in rows])
            with closing(self._connect()) as db, db:
                db.executemany(
                    "INSERT OR REPLACE INTO index_vectors (passage_id, document_id, vector) "
                    "VALUES (?, ?, ?)",
                    (
                        (row[0], row[1], np.asarray(vector, dtype=np.float32).tobytes())
                        for row, vector in zip(rows, vectors, strict=True)
                    ),
                )

    @_explains_failures
    def documents(self, *, collection: str | None = None) -> list[IndexedDocument]:
        """Every indexed document (or those in `collection`), with the collections of each."""
        in_scope, args = _scope_sql([], collection)
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT d.path, d.title, d.chars, d.passages, d.added_at, "
                "(SELECT group_concat(name, char(31)) FROM (SELECT name FROM index_collections "
                "WHERE document_id = d.id ORDER BY name)) "
                f"FROM index_documents AS d WHERE 1 {in_scope} ORDER BY d.path",
                args,
            ).fetchall()
        return [
            IndexedDocument(
                Path(p), title, chars, n, datetime.fromisoformat(added),
                tuple(names.split("\x1f")) if names else (),
            )
            for p, title, chars, n, added, names in rows
        ]  # fmt: skip

    @_explains_failures
    def collections(self) -> list[Collection]:
        """The collections, by name, with how many documents and passages each holds."""
        with closing(self._connect()) as db:
            rows = db.execute(
                "SELECT c.name, count(*), sum(d.passages) FROM index_collections AS c "
                "JOIN index_documents AS d ON d.id = c.document_id GROUP BY c.name ORDER BY c.name"
            ).fetchall()
        return [Collection(name, documents, passages or 0) for name, documents, passages in rows]

    @_explains_failures
    def remove(self, path: Path | str, *, collection: str | None = None) -> int:
        """Forget a file, or every indexed file under a folder; returns how many were removed.
        With `collection`, the documents only leave that collection and stay indexed.

        The path need not exist any more: removing a deleted file's entry is the common case.
        """
        target = str(Path(path).expanduser().resolve())
        prefix = target.rstrip(os.sep) + os.sep
        if collection is not None:
            with closing(self._connect()) as db, db:
                return db.execute(
                    "DELETE FROM index_collections WHERE name = ? AND document_id IN (SELECT id "
                    "FROM index_documents WHERE path = ? OR substr(path, 1, length(?)) = ?)",
                    (collection, target, prefix, prefix),
                ).rowcount
        with closing(self._connect()) as db, db:
            ids = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM index_documents "
                    "WHERE path = ? OR substr(path, 1, length(?)) = ?",
                    (target, prefix, prefix),
                )
            ]
            for document_id in ids:
                self._delete(db, document_id)
        return len(ids)

    @_explains_failures
    def count(self, *, collection: str | None = None) -> int:
        """Number of indexed documents, or of those in `collection` (0 means local search
        cannot answer anything)."""
        in_scope, args = _scope_sql([], collection)
        with closing(self._connect()) as db:
            sql = f"SELECT count(*) FROM index_documents AS d WHERE 1 {in_scope}"
            return int(db.execute(sql, args).fetchone()[0])

    def _file_in(self, collection: str, file: Path) -> None:
        with closing(self._connect()) as db, db:
            db.execute(
                "INSERT OR IGNORE INTO index_collections (name, document_id) "
                "SELECT ?, id FROM index_documents WHERE path = ?",
                (collection, str(file)),
            )

    def _add_file(self, file: Path) -> str:
        """Index one file; returns which `IndexReport` counter it belongs to."""
        if file.stat().st_size > MAX_FILE_BYTES:
            raise _FileTooLarge(f"file larger than {MAX_FILE_BYTES // 1_000_000} MB")
        data = file.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        key = str(file)
        with closing(self._connect()) as db:
            row = db.execute(
                "SELECT id, sha256, added_at FROM index_documents WHERE path = ?", (key,)
            ).fetchone()
        if row is not None and row[1] == digest:
            return "unchanged"
        document = extract_document(data, name=file.name)
        spans = split_passages(document.text)
        titles = passage_titles(document.title, document.text, spans)
        now = datetime.now(UTC).isoformat()
        with closing(self._connect()) as db, db:
            # Extraction ran outside any lock; another process may have indexed the file since.
            # Read the row again under the write lock so the insert cannot collide with it.
            db.execute("BEGIN IMMEDIATE")
            row = db.execute(
                "SELECT id, sha256, added_at FROM index_documents WHERE path = ?", (key,)
            ).fetchone()
            if row is not None and row[1] == digest:
                return "unchanged"
            kept: list[str] = []
            if row is not None:  # the new version stays in the old one's collections
                kept = [
                    name
                    for (name,) in db.execute(
                        "SELECT name FROM index_collections WHERE document_id = ?", (row[0],)
                    )
                ]
                self._delete(db, row[0])
            cursor = db.execute(
                "INSERT INTO index_documents "
                "(path, sha256, title, chars, passages, added_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    key,
                    digest,
                    document.title,
                    len(document.text),
                    len(spans),
                    row[2] if row else now,
                    now,
                ),
            )
            db.executemany(
                "INSERT INTO index_passages (title, body, document_id, start_char, end_char) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    (title, s.text, cursor.lastrowid, s.start, s.end)
                    for title, s in zip(titles, spans, strict=True)
                ),
            )
            db.executemany(
                "INSERT INTO index_collections (name, document_id) VALUES (?, ?)",
                ((name, cursor.lastrowid) for name in kept),
            )
        return "added" if row is None else "updated"

    @staticmethod
    def _delete(db: sqlite3.Connection, document_id: int) -> None:
        db.execute("DELETE FROM index_collections WHERE document_id = ?", (document_id,))
        db.execute("DELETE FROM index_vectors WHERE document_id = ?", (document_id,))
        db.execute("DELETE FROM index_passages WHERE document_id = ?", (document_id,))
        db.execute("DELETE FROM index_documents WHERE id = ?", (document_id,))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.db_path, timeout=_BUSY_TIMEOUT_S)
        db.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_S * 1000}")
        # In WAL mode NORMAL is safe from corruption and skips an fsync per commit (a crash
        # can lose only the last commits, which the next `add` redoes: it is incremental).
        db.execute("PRAGMA synchronous = NORMAL")
        return db


def _path_prefix(path: Path | str) -> str:
    return str(Path(path).expanduser().resolve())


def _scope_sql(prefixes: list[str], collection: str | None = None) -> tuple[str, list[str]]:
    """`AND ...` clauses on `d` for documents at or under any of `prefixes` and, when one is
    named, in `collection`."""
    sql, args = "", []
    if prefixes:
        clauses = []
        for prefix in prefixes:
            folder = prefix.rstrip(os.sep) + os.sep
            clauses.append("d.path = ? OR substr(d.path, 1, length(?)) = ?")
            args += [prefix, folder, folder]
        sql = "AND (" + " OR ".join(clauses) + ")"
    if collection is not None:
        sql += " AND d.id IN (SELECT document_id FROM index_collections WHERE name = ?)"
        args.append(collection)
    return sql, args


def passage_titles(title: str, text: str, spans: list) -> list[str]:
    """Each passage's title: the document's, then the section heading it falls under (or,
    when it opens under the page title alone, the first heading inside it), so fielded BM25
    and the reader both know what the passage is about."""
    headings = headings_before(text)
    titles, current, cursor = [], "", 0
    for span in spans:
        while cursor < len(headings) and headings[cursor][0] <= span.start:
            current = headings[cursor][1]
            cursor += 1
        section = current
        if not section or section == title:
            inside = [h for offset, h in headings if span.start < offset < span.end]
            section = inside[0] if inside else section
        titles.append(f"{title} › {section}" if section and section != title else title)
    return titles


def _expire_old_extractions(db: sqlite3.Connection) -> None:
    """Documents read by an older extractor are re-read on their next `add` (their hash is
    forgotten), so an improved extraction reaches existing indexes."""
    row = db.execute("SELECT value FROM index_meta WHERE key = 'extractor'").fetchone()
    if row is not None and row[0] == EXTRACTOR_VERSION:
        return
    db.execute("UPDATE index_documents SET sha256 = ''")
    db.execute(
        "INSERT OR REPLACE INTO index_meta (key, value) VALUES ('extractor', ?)",
        (EXTRACTOR_VERSION,),
    )


def _resolve_existing(path: Path | str) -> Path:
    candidate = Path(path).expanduser()
    if not candidate.exists():
        raise DocsPathError(
            f"No such file or folder: {candidate}. Pass an existing folder or a file "
            f"({', '.join(sorted(SUPPORTED_SUFFIXES))}) to `ttdr index add PATH` or --docs PATH."
        )
    return candidate.resolve()


def _document_files(root: Path) -> Iterator[Path]:
    """`root` itself if it is a file, else the files under it in a stable order, skipping hidden
    files and folders (.git, .venv) and files of unsupported types."""
    if root.is_file():
        yield root
        return
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith("."))
        for name in sorted(files):
            file = Path(folder) / name
            if not name.startswith(".") and file.suffix.lower() in SUPPORTED_SUFFIXES:
                yield file
