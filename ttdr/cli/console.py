"""What every command shares: stderr for messages, one-line errors with exit codes, tables,
and stdout for what a command prints as its result: a table on a terminal, tab-separated
lines when piped, JSON with `--json`.

Everything printed that came from documents, a model or the history goes through
`ttdr.terminal` (`shown` where rich parses markup, `printable` for plain text), so a page
cannot retitle, clear or rewrite the user's terminal.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from ttdr.config import ConfigFileError, Settings, env_var
from ttdr.errors import (
    DocsPathError,
    InvalidQuestionError,
    OutputPathError,
    RunNotFoundError,
    RunNotResumableError,
    TrainingDataError,
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
    ConfigFileError,
    TrainingDataError,
)
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


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


def print_rows(columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """A table that fits the terminal; when piped, a header line and one tab-separated line per
    row, so `cut`, `grep` and `sort` see whole values, never a box or a cut cell. Cells are raw
    text: escape sequences (and, when piped, tabs and line breaks) are removed here."""
    console = Console()
    if console.is_terminal:
        table = Table(*columns)
        for row in rows:
            table.add_row(*(shown(str(cell)) for cell in row))
        console.print(table)
        return
    lines = ["\t".join(columns), *("\t".join(map(_plain_cell, row)) for row in rows)]
    sys.stdout.write("".join(line + "\n" for line in lines))


def _plain_cell(value: object) -> str:
    return " ".join(printable(str(value)).split())


# Controls that JSON leaves raw (it escapes only U+0000-U+001F): DEL, the C1 controls and the
# bidirectional overrides, written as \uXXXX escapes so the text is kept but never acted on.
_RAW_IN_JSON = re.compile(r"[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def print_json(data: Any) -> None:
    """`data` as JSON on stdout (dates and paths as strings), safe to print on a terminal."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    sys.stdout.write(_RAW_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n")


def setting_help(text: str, name: str) -> str:
    """An option's help with the setting behind it: `Denoising steps. [default: 3;
    TTDR_ITERATIONS]`. The default shown is the built-in one (a config file or the variable
    may change it: `ttdr config show`). The option itself has no default and no envvar, so an
    unset flag leaves the Settings object, the one reader of variables and files, in charge."""
    default = Settings.model_fields[name].get_default(call_default_factory=True)
    if isinstance(default, bool):
        default = str(default).lower()  # as TOML and the variables write it
    return f"{text} \\[default: {'unset' if default is None else default}; {env_var(name)}]"


def print_text(text: str) -> None:
    """A command's result (a report, a prompt) on stdout, without control characters."""
    sys.stdout.write(printable(text))
