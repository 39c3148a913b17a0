"""The history's schema as a ladder of steps, numbered by SQLite's `PRAGMA user_version`.

`STEPS[n]` takes a database at version n to n + 1; each step is frozen SQL, never the current
table classes, so a database of any age climbs the same rungs a new one does. The whole climb
runs in one `BEGIN IMMEDIATE` transaction: of several processes opening a fresh data directory
at once, one migrates while the others wait on the lock and then find the work done (DDL and
the version are transactional in SQLite), so none can see a half-made schema.

Version 0 is a fresh file, or one written before the ladder existed (its tables may already be
there, which is why the first step says `IF NOT EXISTS`). The local index and the page cache
keep their own tables in the same file; `user_version` belongs to the history alone.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from ttdr.errors import HistoryDatabaseError
from ttdr.sqlite_failure import retry_while_locked

BUSY_TIMEOUT_S = 30.0

# The schema as ttdr wrote it before the ladder (SQLModel's DDL for the tables of that time).
_BASELINE = """
CREATE TABLE IF NOT EXISTS runs (
    id VARCHAR NOT NULL,
    question VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    config_json VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    created_at DATETIME NOT NULL,
    updated_at DATETIME NOT NULL,
    finished_at DATETIME,
    error VARCHAR,
    plan_json VARCHAR,
    stats_json VARCHAR NOT NULL,
    owner VARCHAR,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_runs_status ON runs (status);
CREATE INDEX IF NOT EXISTS ix_runs_created_at ON runs (created_at);
CREATE TABLE IF NOT EXISTS prompt_versions (
    id INTEGER NOT NULL,
    component VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    parent_id INTEGER,
    fitness FLOAT,
    uses INTEGER NOT NULL,
    scored INTEGER NOT NULL,
    note VARCHAR NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (id)
);
CREATE INDEX IF NOT EXISTS ix_prompt_versions_component ON prompt_versions (component);
CREATE TABLE IF NOT EXISTS drafts (
    id INTEGER NOT NULL,
    run_id VARCHAR NOT NULL,
    iteration INTEGER NOT NULL,
    text VARCHAR NOT NULL,
    changed_json VARCHAR NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (run_id, iteration),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ix_drafts_run_id ON drafts (run_id);
CREATE TABLE IF NOT EXISTS qa_pairs (
    id INTEGER NOT NULL,
    run_id VARCHAR NOT NULL,
    iteration INTEGER NOT NULL,
    section VARCHAR NOT NULL,
    question VARCHAR NOT NULL,
    answer VARCHAR NOT NULL,
    sources_json VARCHAR NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (run_id, iteration, question),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ix_qa_pairs_run_id ON qa_pairs (run_id);
CREATE TABLE IF NOT EXISTS sources (
    id INTEGER NOT NULL,
    run_id VARCHAR NOT NULL,
    number INTEGER NOT NULL,
    url VARCHAR NOT NULL,
    title VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    excerpt VARCHAR NOT NULL,
    retrieved_at DATETIME NOT NULL,
    PRIMARY KEY (id),
    UNIQUE (run_id, number),
    UNIQUE (run_id, url),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ix_sources_run_id ON sources (run_id);
CREATE TABLE IF NOT EXISTS reports (
    run_id VARCHAR NOT NULL,
    body VARCHAR NOT NULL,
    references_json VARCHAR NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (run_id),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER NOT NULL,
    run_id VARCHAR NOT NULL,
    stage VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    message VARCHAR NOT NULL,
    iteration INTEGER,
    data_json VARCHAR NOT NULL,
    elapsed_s FLOAT NOT NULL,
    created_at DATETIME NOT NULL,
    PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS ix_events_run_id ON events (run_id);
"""

# Columns that held hand-serialised JSON text; the text stays as it is (a JSON column stores
# exactly that), only the names lose their `_json`.
_JSON_COLUMNS = (
    ("runs", "config_json", "config"),
    ("runs", "plan_json", "plan"),
    ("runs", "stats_json", "stats"),
    ("drafts", "changed_json", "changed_sections"),
    ("qa_pairs", "sources_json", "source_numbers"),
    ("reports", "references_json", "citations"),
    ("events", "data_json", "data"),
)


def _baseline(db: sqlite3.Connection) -> None:
    for statement in _BASELINE.split(";"):
        if statement.strip():
            db.execute(statement)
    # Histories from before runs had owners have every table but this column.
    if "owner" not in _columns(db, "runs"):
        db.execute("ALTER TABLE runs ADD COLUMN owner VARCHAR")


def _json_columns(db: sqlite3.Connection) -> None:
    for table, old, new in _JSON_COLUMNS:
        db.execute(f"ALTER TABLE {table} RENAME COLUMN {old} TO {new}")


STEPS: tuple[Callable[[sqlite3.Connection], None], ...] = (_baseline, _json_columns)
SCHEMA_VERSION = len(STEPS)


def migrate(path: Path) -> int:
    """Bring the history at `path` to `SCHEMA_VERSION`; return the version it was at.

    Raises sqlite3 errors as they come (the caller explains them) and `HistoryDatabaseError`
    for a history written by a newer ttdr, which this one must not touch. A lock conflict is
    tried again for up to `BUSY_TIMEOUT_S`: SQLite answers some of them (switching a fresh file
    to WAL while another process does the same) at once with SQLITE_BUSY instead of waiting,
    and one of six processes opening a fresh home at once was seen to fail that way.
    """
    return retry_while_locked(lambda: _migrate_once(path), timeout_s=BUSY_TIMEOUT_S)


def _migrate_once(path: Path) -> int:
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("BEGIN IMMEDIATE")
        try:
            found = db.execute("PRAGMA user_version").fetchone()[0]
            if found > SCHEMA_VERSION:
                raise HistoryDatabaseError(
                    f"The history database {path} was written by a newer ttdr (schema version "
                    f"{found}; this one knows up to {SCHEMA_VERSION}): upgrade ttdr, or move "
                    "the file aside to start a new history."
                )
            for step in STEPS[found:]:
                step(db)
            # Also a probe: setting the version is a write, so a history this process cannot
            # write fails here, at open, rather than at a run's first event. Nothing to do
            # leaves nothing written.
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT" if found < SCHEMA_VERSION else "ROLLBACK")
        except BaseException:
            if db.in_transaction:
                with suppress(sqlite3.Error):  # the error that brought us here says more
                    db.execute("ROLLBACK")
            raise
        return found
    finally:
        db.close()


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
