"""Output files (`--out`): refused before any work when they cannot be written, and written
so that a failure part-way leaves the file that was there before; which export format a
command writes (`--format`, else `--out`'s suffix)."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from pathlib import Path

import typer

from ttdr.cli.console import print_text
from ttdr.errors import ExportFormatError, OutputPathError, OutputWriteError
from ttdr.export import (
    BINARY_FORMATS,
    FORMATS,
    ExportFormat,
    export_bytes,
    export_pdf,
    export_run,
    format_for,
)
from ttdr.models import RunDetail


def check_output(path: Path) -> None:
    """Raise `OutputPathError` (one line naming what is wrong) unless `path` can be written."""
    folder = path.absolute().parent
    if path.is_dir():
        raise OutputPathError(f"--out {path} is a folder: give a file name, e.g. {path / 'x'}")
    if not folder.exists():
        raise OutputPathError(
            f"cannot write {path}: the folder {folder} does not exist. Create it first "
            "(mkdir -p) or give another path."
        )
    if not folder.is_dir():
        raise OutputPathError(f"cannot write {path}: {folder} is not a folder.")
    writable = os.access(path, os.W_OK) if path.exists() else os.access(folder, os.W_OK | os.X_OK)
    if not writable:
        raise OutputPathError(f"cannot write {path}: permission denied. Give another path.")


def write_output(path: Path, text: str | bytes) -> None:
    """Write `text` (UTF-8) or bytes (a PDF) to `path`; an OS error becomes `OutputWriteError`.

    A regular file (or a new one) is written beside its target and renamed over it, so a
    full disk never leaves half a report where a whole one was; anything else (a device, a
    pipe) is written in place.
    """
    check_output(path)
    data = text.encode("utf-8") if isinstance(text, str) else text
    target = path.resolve() if path.is_symlink() else path  # keep the link, replace its file
    try:
        if target.exists() and not target.is_file():
            target.write_bytes(data)
            return
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
            with os.fdopen(descriptor, "wb") as file:
                file.write(data)
            if target.exists():
                os.chmod(temporary, stat.S_IMODE(target.stat().st_mode))
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                temporary.unlink()
            raise
    except OSError as exc:
        raise OutputWriteError(f"cannot write {path}: {exc.strerror or exc}") from None


def check_output_folder(path: Path) -> None:
    """Raise `OutputPathError` unless `path` is, or can be made, a writable folder; nothing
    is created, so a command refused later leaves no empty folder behind."""
    if path.exists() and not path.is_dir():
        raise OutputPathError(f"--out {path} is a file: give a folder.")
    existing = path.absolute()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputPathError(f"cannot create the folder {path}: {existing} is not a folder.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputPathError(f"cannot write in {existing}: permission denied.")


def given(ctx: typer.Context, name: str) -> str | None:
    """The value of option `name` when the command line gave it, else None: `--format`'s
    default (md, shown in the help) must not outrank the suffix of `--out report.pdf`.
    (By the source's name: Typer may bring a click of its own, with its own enum.)"""
    source = ctx.get_parameter_source(name)
    return ctx.params[name] if getattr(source, "name", None) == "COMMANDLINE" else None


def choose_format(fmt: str | None, out: Path | None) -> ExportFormat:
    """`--format` when given, else the one `--out`'s suffix names (report.pdf → pdf), else md;
    a format ttdr cannot write is a usage error (`ExportFormatError`)."""
    chosen = fmt if fmt is not None else format_for(out) or "md"
    if chosen not in FORMATS:
        names = f"{', '.join(FORMATS[:-1])} or {FORMATS[-1]}"
        raise ExportFormatError(f"--format must be {names}, not {chosen!r}")
    if chosen in BINARY_FORMATS and out is None and sys.stdout.isatty():
        raise ExportFormatError(
            f"{chosen.upper()} is a binary file: give --out FILE.{chosen} or redirect stdout "
            f"(> report.{chosen})"
        )
    return chosen  # type: ignore[return-value]


def rendered(run: RunDetail, fmt: ExportFormat) -> tuple[str | bytes, str | None]:
    """The export of `run` as text or bytes, and a one-line warning worth showing (a PDF
    written without a Unicode font)."""
    if fmt == "pdf":
        pdf = export_pdf(run)
        return pdf.data, pdf.warning
    if fmt in BINARY_FORMATS:
        return export_bytes(run, fmt), None
    return export_run(run, fmt), None


def write_stdout(data: str | bytes) -> None:
    """Text through `print_text` (no control characters); a binary export byte for byte."""
    if isinstance(data, str):
        print_text(data)
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
