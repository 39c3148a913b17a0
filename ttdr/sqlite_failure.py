"""What kind of SQLite failure a user can act on, shared by the history and the document index.

Both files fail the same ways (damaged, not writable, a full disk, an I/O error, held locked by
another process); each turns the kind into a message about its own file.

Some lock conflicts SQLite answers at once with SQLITE_BUSY instead of waiting out the busy
timeout: a connection that must upgrade a read it already holds into a write while another
process writes (switching a fresh file to WAL does exactly that) is refused to avoid a deadlock.
`retry_while_locked` tries such a call again, for as long as the busy timeout would have waited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random

_R = TypeVar("_R")

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


def is_locked(exc: BaseException) -> bool:
    """Whether `exc` is SQLite refusing a lock another connection holds."""
    failure = classify(exc)
    return failure is not None and failure.kind == "locked"


def retry_while_locked(call: Callable[[], _R], *, timeout_s: float) -> _R:
    """`call()`, tried again after a short random pause whenever SQLite refuses it a lock, for
    up to `timeout_s`; the last refusal is raised as it came. `call` must be safe to repeat
    (one transaction that either commits whole or not at all)."""
    retrying = Retrying(
        retry=retry_if_exception(is_locked),
        stop=stop_after_delay(timeout_s),
        wait=wait_random(0.02, 0.25),
        reraise=True,
    )
    return retrying(call)
