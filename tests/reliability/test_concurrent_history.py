"""Several processes opening a fresh history at once: none fails, every run is kept.

Each process is a real interpreter on the real SQLite file. They import first and then wait
on a shared start time, so their schema creation overlaps; that is how three `ttdr research`
runs started together on a new data directory collided (`table runs already exists`).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from backends.search.local_index import LocalIndex
from ttdr.store import Store, migrations

PROCESSES = 6

_OPEN_AT = """
import sys, time
from ttdr.models import ResearchConfig
from ttdr.store import Store
time.sleep(max(0.0, float(sys.argv[2]) - time.time()))
store = Store(sys.argv[1])
print(store.create_run(f"question {sys.argv[3]}?", ResearchConfig(model="m")))
"""


@pytest.mark.parametrize("first", ["nothing", "index"], ids=["fresh home", "after index add"])
def test_processes_opening_a_new_history_at_once_all_record_their_runs(
    tmp_path: Path, first: str
) -> None:
    db = tmp_path / "ttdr-home" / "ttdr.db"
    if first == "index":  # `ttdr index add` made the file, with only the index's tables
        LocalIndex(db)
    start = time.time() + 5.0  # every interpreter has imported by then, even on a busy CPU
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", _OPEN_AT, str(db), str(start), str(number)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for number in range(PROCESSES)
    ]
    outputs = [p.communicate(timeout=120) for p in processes]

    assert [p.returncode for p in processes] == [0] * PROCESSES, [err for _, err in outputs]
    printed = {out.strip() for out, _ in outputs}
    runs = Store(db).list_runs()
    assert {r.id for r in runs} == printed and len(printed) == PROCESSES
    assert {r.question for r in runs} == {f"question {n}?" for n in range(PROCESSES)}
    assert migrations.migrate(db) == migrations.SCHEMA_VERSION  # migrated once, by one of them
