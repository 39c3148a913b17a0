"""A full disk and a read-only data directory: one clear line, and nothing saved before is lost.

Both faults are real, not simulated: the data directory is a small tmpfs of the test's own
(filled up mid-run by the run itself, right after a chosen event), or a read-only bind mount of
it. Mounting needs root, which CI has; elsewhere the read-only case falls back to file modes and
the full-disk case is skipped, saying why.
"""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.search.local_index import LocalIndex
from tests.conftest import CORPUS
from tests.reliability.processes import QUESTION, Kept, fast_env, finish, no_traceback, start, ttdr
from tests.ui_fixtures import stored_run
from ttdr.models import RunStatus
from ttdr.store import Store

IS_ROOT = os.geteuid() == 0


def _mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MB file system of its own, so filling it fills nothing else."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = _mount("-t", "tmpfs", "-o", "size=32m", "tmpfs", str(disk)) if IS_ROOT else None
    if mounted is None or mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr if mounted else 'not root'}")
    yield disk
    subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_disk_that_fills_mid_run_stops_it_with_one_line_and_a_resume_finishes_it(
    small_disk: Path, tiny_model: Path
) -> None:
    home, filler = small_disk / "ttdr-home", small_disk / "filler"
    env = fast_env(home, tiny_model)
    command = ["research", QUESTION, "-n", "2", "--docs", str(CORPUS)]
    full = finish(start(command, env, at=f"revise:started:fill:{filler}"))

    assert full.returncode == 1, full.stderr[-3000:]
    assert no_traceback(full)
    error = full.stderr.strip().splitlines()[-1]
    assert error.startswith("Error:") and "is full" in error and str(home) in error
    listed = ttdr(["history", "list"], env)  # while the disk is still full
    assert no_traceback(listed) and listed.returncode in (0, 1), listed.stderr

    filler.unlink()  # space freed
    kept = Kept.of(home / "ttdr.db")
    assert kept.status in (RunStatus.failed, RunStatus.interrupted)
    assert [iteration for iteration, _ in kept.drafts] == [0]  # R0 was written before
    assert kept.qa and kept.sources  # so were step 1's answer and its sources
    resumed = ttdr(["research", "--resume", kept.run_id], env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    after = Kept.of(home / "ttdr.db")
    assert after.status is RunStatus.done and after.report
    assert after.drafts[0] == kept.drafts[0] and [i for i, _ in after.drafts] == [0, 1, 2]
    assert after.sources[: len(kept.sources)] == kept.sources
    assert after.events[: len(kept.events)] == kept.events


@pytest.fixture
def read_only_home(home: Path) -> Iterator[tuple[Path, str]]:
    """A data directory with a run and an index in it, then made read-only: remounted so for
    root (which file modes do not stop), by file modes for anyone else."""
    store = Store(home / "ttdr.db")
    run_id = stored_run(store)
    store.close()  # the last connection folds the WAL into the file
    LocalIndex(home / "ttdr.db").add(CORPUS)
    if IS_ROOT:
        bound = _mount("--bind", str(home), str(home))
        if bound.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {bound.stderr}")
        remounted = _mount("-o", "remount,bind,ro", str(home))
        if remounted.returncode != 0:
            subprocess.run(["umount", str(home)], check=False)
            pytest.skip(f"cannot remount read-only here: {remounted.stderr}")
    else:
        for path in [home, *home.iterdir()]:
            path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    try:
        yield home, run_id
    finally:
        if IS_ROOT:
            subprocess.run(["umount", str(home)], check=False)
        else:
            for path in [home, *home.iterdir()]:
                path.chmod(path.stat().st_mode | stat.S_IWUSR)


READ_ONLY_COMMANDS = {
    "history list": ["history", "list"],
    "history show": ["history", "show", "{run}"],
    "index list": ["index", "list"],
    "index search": ["index", "search", "tides"],
    "index add": ["index", "add", str(CORPUS)],
    "research": ["research", QUESTION, "--docs", str(CORPUS)],
}


def test_a_read_only_data_directory_gets_one_clear_line_and_keeps_its_rows(
    read_only_home: tuple[Path, str], tiny_model: Path
) -> None:
    home, run_id = read_only_home
    before = contents(home)
    env = fast_env(home, tiny_model)
    outcomes = {}
    for name, args in READ_ONLY_COMMANDS.items():
        result = ttdr([a.replace("{run}", run_id) for a in args], env)
        outcomes[name] = result.returncode
        assert no_traceback(result), (name, result.stderr[-3000:])
        if result.returncode:
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            assert result.returncode == 1 and lines[-1].startswith("Error:"), (name, lines)
            assert str(home) in lines[-1], (name, lines[-1])  # names the file to fix
    assert outcomes["research"] == 1 and outcomes["index add"] == 1  # nothing can be written
    assert contents(home) == before  # not a byte of the history or the index changed


def contents(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}
