"""What kind of SQLite failure a user can act on, shared by the history and the document index.

Both files fail the same ways (damaged, not writable, a full disk, an I/O error, held locked by
another process); each turns the kind into a message about its own file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

FailureKind = Literal["damaged", "unwritable", "full", "io", "locked"]

_KINDS: dict[str, FailureKind] = {
    "SQLITE_NOTADB": "damaged",
    "SQLITE_CORRUPT": "damaged",
    "SQLITE_READONLY": "unwritable",
    "SQLITE_CANTOPEN": "unwritable",
    "SQLITE_PERM": "unwritable",
    "SQLITE_AUTH": "unwritable",
    "SQLITE_FULL": "full",
    "SQLITE_IOERR": "io",
    "SQLITE_BUSY": "locked",
    "SQLITE_LOCKED": "locked",
}


@dataclass(frozen=True)
class SqliteFailure:
    kind: FailureKind
    reason: str  # SQLite's message and error name, for the end of a one-line error


def classify(exc: BaseException) -> SqliteFailure | None:
    """The failure's kind, or None for one that is not the user's to fix (a bug keeps its
    traceback)."""
    code = getattr(exc, "sqlite_errorname", "") or ""
    primary = "_".join(code.split("_")[:2])  # SQLITE_READONLY_DBMOVED -> SQLITE_READONLY
    kind = _KINDS.get(primary)
    if kind is None:
        return None
    return SqliteFailure(kind, f"{exc} ({code})" if code else str(exc))
