"""Output files (`--out`): refused before any work when they cannot be written, and written
so that a failure part-way leaves the file that was there before."""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from ttdr.errors import OutputPathError, OutputWriteError


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


def write_output(path: Path, text: str) -> None:
    """Write `text` to `path`; an OS error becomes `OutputWriteError`.

    A regular file (or a new one) is written beside its target and renamed over it, so a
    full disk never leaves half a report where a whole one was; anything else (a device, a
    pipe) is written in place.
    """
    check_output(path)
    data = text.encode("utf-8")
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
