"""What every command shares: stderr for messages, one-line errors with exit codes, tables,
and stdout for what a command prints as its result.

Everything printed that came from documents, a model or the history goes through
`ttdr.terminal` (`shown` where rich parses markup, `printable` for plain text), so a page
cannot retitle, clear or rewrite the user's terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import typer
from rich.console import Console
from rich.table import Table

from ttdr.errors import (
    DocsPathError,
    InvalidQuestionError,
    OutputPathError,
    RunNotFoundError,
    RunNotResumableError,
    TtdrError,
)
from ttdr.terminal import printable, shown

err = Console(stderr=True, soft_wrap=True)
# Exit 2: the command was given something it cannot use; anything else a user can act on is 1.
INPUT_ERRORS = (
    InvalidQuestionError,
    DocsPathError,
    RunNotFoundError,
    RunNotResumableError,
    OutputPathError,
)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]Error:[/] {shown(message)}")
    return typer.Exit(code)


def guarded(action: Callable[[], None]) -> None:
    """Turn a user-facing error into a clear message and an exit code, not a traceback."""
    try:
        action()
    except INPUT_ERRORS as exc:
        raise fail(str(exc), 2) from None
    except TtdrError as exc:
        raise fail(str(exc), 1) from None


def print_table(table: Table) -> None:
    """Tables fit the terminal; piped output gets room so ids and paths are never cut.
    Cells holding stored or document text must be passed through `shown` by the caller."""
    console = Console()
    (console if console.is_terminal else Console(width=240)).print(table)


def print_text(text: str) -> None:
    """A command's result (a report, a prompt) on stdout, without control characters."""
    sys.stdout.write(printable(text))
