"""Opening the history file: migrate it, connect with the right pragmas, explain failures.

A damaged, unwritable or full history is the user's to fix, so every SQLite error of that kind
becomes a `HistoryDatabaseError` naming the file and what to do, both while opening and on
any later query. The file is never reset or rewritten to make an error go away.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from sqlalchemy import Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlmodel import create_engine

from ttdr.errors import HistoryDatabaseError
from ttdr.sqlite_failure import classify
from ttdr.store.migrations import BUSY_TIMEOUT_S, migrate


def open_engine(path: Path) -> Engine:
    """The history at `path`, created or migrated to the current schema."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        migrate(path)
    except (sqlite3.Error, OSError) as exc:
        raise (explain(path, exc) or exc) from exc
    engine = create_engine(
        f"sqlite:///{path}",
        connect_args={"check_same_thread": False, "timeout": BUSY_TIMEOUT_S},
        json_serializer=lambda value: json.dumps(value, default=str),  # event data may hold paths
    )
    event.listen(engine, "connect", _set_pragmas)

    def on_error(context: ExceptionContext) -> None:
        error = explain(path, context.original_exception)
        if error is not None:
            raise error from context.original_exception

    event.listen(engine, "handle_error", on_error)
    return engine


def explain(path: Path, exc: BaseException) -> HistoryDatabaseError | None:
    """A one-line error for a failure the user can act on; None for anything else (a bug
    should keep its traceback)."""
    if isinstance(exc, HistoryDatabaseError):
        return exc
    if isinstance(exc, OSError):
        return HistoryDatabaseError(
            f"The folder of the history database {path} cannot be created ({exc}): check the "
            "permissions of its parent folder, or set TTDR_HOME to a folder you can write."
        )
    failure = classify(exc)
    if failure is None:
        return None
    reason = failure.reason
    messages = {
        "damaged": f"The history database {path} is damaged or not an SQLite database: "
        f"{reason}. It was left as it is: move it aside (e.g. mv {path} {path}.broken) and ttdr "
        "starts a new, empty history.",
        "unwritable": f"The history database {path} cannot be opened for writing: {reason}. "
        f"Check that you may write the file and its folder (SQLite keeps {path.name}-wal and "
        f"{path.name}-shm beside it), or set TTDR_HOME to another folder.",
        "full": f"The disk holding the history database {path} is full: {reason}. Free some "
        "space and try again; what was saved before is kept.",
        "io": f"The history database {path} could not be read or written: {reason}. Check the "
        "disk it is on.",
        "locked": f"The history database {path} stayed locked by another process for "
        f"{BUSY_TIMEOUT_S:.0f} s: {reason}. Try again when it has finished.",
    }
    return HistoryDatabaseError(messages[failure.kind])


def _set_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")  # before anything waits
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()
