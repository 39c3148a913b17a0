"""Several processes indexing the same folder at once: none fails, nothing is indexed twice.

Each process is a real interpreter on the real SQLite file; they wait on a shared start time so
their schema creation and inserts overlap, which is how `ttdr research --docs` runs collided.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from backends.search import local_index
from backends.search.local_index import LocalIndex
from ttdr.errors import IndexDatabaseError

CORPUS = Path(__file__).parent.parent / "fixtures" / "corpus"
PROCESSES = 4

_INDEX_AT = """
import sys, time
from pathlib import Path
start = float(sys.argv[3])
time.sleep(max(0.0, start - time.time()))
from backends.search.local_index import LocalIndex
report = LocalIndex(Path(sys.argv[1])).add(Path(sys.argv[2]))
print(report.added, report.updated, report.unchanged, len(report.skipped))
"""


def _index_at_once(db: Path, folder: Path) -> list[subprocess.CompletedProcess[str]]:
    start = time.time() + 2.0  # every interpreter has imported by then
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _INDEX_AT, str(db), str(folder), str(start)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    done = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=300)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return done


def test_processes_indexing_one_folder_at_once_all_succeed_and_index_each_file_once(
    tmp_path: Path,
) -> None:
    db = tmp_path / "index.db"
    results = _index_at_once(db, CORPUS)

    assert [r.returncode for r in results] == [0] * PROCESSES, [r.stderr for r in results]
    files = sorted(p for p in CORPUS.rglob("*") if p.is_file() and not p.name.startswith("."))
    index = LocalIndex(db)
    assert len(index.documents()) == len(files)
    # Each file was added by exactly one process; the others found it already there.
    added = sum(int(r.stdout.split()[0]) for r in results)
    assert added == len(files)

    alone = LocalIndex(tmp_path / "alone.db")
    alone.add(CORPUS)
    assert _passage_count(db) == _passage_count(tmp_path / "alone.db")


def _passage_count(db: Path) -> int:
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(db)) as connection:
        return int(connection.execute("SELECT count(*) FROM index_passages").fetchone()[0])


def _hold_write_lock(db: Path) -> sqlite3.Connection:
    """Another process's writer on a rollback-journal file: the state in which SQLite refuses
    a WAL switch at once (SQLITE_BUSY without waiting), as one of four CI processes saw."""
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE runs (id TEXT PRIMARY KEY)")
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT INTO runs VALUES ('run-1')")
    return holder


def test_an_index_opened_while_another_writer_holds_the_file_waits_for_it(tmp_path: Path) -> None:
    db = tmp_path / "ttdr.sqlite"
    holder = _hold_write_lock(db)
    release = threading.Timer(0.5, holder.execute, args=("COMMIT",))
    release.start()
    try:
        index = LocalIndex(db)
    finally:
        release.join()
        holder.close()

    index.add(CORPUS)
    with sqlite3.connect(db) as connection:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert connection.execute("SELECT id FROM runs").fetchall() == [("run-1",)]
    assert index.documents()


def test_a_writer_that_never_lets_go_gives_the_locked_error_and_keeps_its_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local_index, "_BUSY_TIMEOUT_S", 1)
    db = tmp_path / "ttdr.sqlite"
    holder = _hold_write_lock(db)
    try:
        with pytest.raises(IndexDatabaseError, match="stayed locked by another process"):
            LocalIndex(db)
        holder.execute("COMMIT")
    finally:
        holder.close()
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT id FROM runs").fetchall() == [("run-1",)]
