"""The history as the `ttdr` command meets it: a broken database file gets one line naming it
and is left alone, a deleted run takes its checkpoints with it, and id prefixes are literal."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

import pytest
from langgraph.graph import StateGraph
from typer.testing import CliRunner

from ttdr.api import open_checkpointer
from ttdr.cli import app
from ttdr.models import ResearchConfig
from ttdr.store import Store


def ttdr(home: Path, *args: str, prefix: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """The real command in its own interpreter, so what a user sees is what is checked."""
    return subprocess.run(
        [*prefix, sys.executable, "-m", "ttdr.cli", *args],
        env={**os.environ, "TTDR_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=180,
    )


def assert_one_clean_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    for needle in needles:
        assert needle in line


@pytest.mark.parametrize(
    "command",
    [("history", "list"), ("history", "show", "abc"), ("prompts", "list"), ("research", "Why?")],
    ids=" ".join,
)
def test_a_damaged_history_gets_one_line_naming_it_and_is_left_alone(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = home / "ttdr.db"
    db.write_bytes(os.urandom(8192))
    before = db.read_bytes()

    assert_one_clean_line(ttdr(home, *command), str(db), "move it aside")
    assert db.read_bytes() == before  # never reset to make the error go away


def test_a_read_only_history_gets_one_line_and_works_again_once_writable(tmp_path: Path) -> None:
    home = tmp_path / "home"
    db = home / "ttdr.db"
    run_id = Store(db).create_run("kept?", ResearchConfig(model="m"))
    db.chmod(0o444)
    prefix: tuple[str, ...] = ()
    if os.geteuid() == 0:  # root writes read-only files: run the command without that power
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop CAP_DAC_OVERRIDE")
        prefix = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    before = db.read_bytes()

    assert_one_clean_line(ttdr(home, "history", "list", prefix=prefix), str(db), "write")
    assert db.read_bytes() == before

    db.chmod(0o644)
    listing = ttdr(home, "history", "list")
    assert listing.returncode == 0 and run_id in listing.stdout


class Counter(TypedDict):
    n: int


def checkpointed(saver, thread_id: str) -> None:
    """A real (one-node) LangGraph graph, checkpointed under the run id as research is."""
    graph = StateGraph(Counter)
    graph.add_node("step", lambda state: {"n": state["n"] + 1})
    graph.set_entry_point("step")
    graph.set_finish_point("step")
    graph.compile(checkpointer=saver).invoke({"n": 0}, {"configurable": {"thread_id": thread_id}})


def checkpoint_rows(path: Path, thread_id: str) -> int:
    query = "SELECT count(*) FROM {} WHERE thread_id = ?"
    with sqlite3.connect(path) as conn:
        return sum(
            conn.execute(query.format(table), (thread_id,)).fetchone()[0]
            for table in ("checkpoints", "writes")
        )


def test_history_delete_removes_the_runs_checkpoints_too(home: Path) -> None:
    store = Store(home / "ttdr.db")
    gone = store.create_run("gone?", ResearchConfig(model="m"))
    kept = store.create_run("kept?", ResearchConfig(model="m"))
    checkpoints = home / "checkpoints.db"
    saver = open_checkpointer(checkpoints)
    for run_id in (gone, kept):
        checkpointed(saver, run_id)
    assert checkpoint_rows(checkpoints, gone) > 0

    result = CliRunner().invoke(app, ["history", "delete", gone[:6], "--yes"])
    assert result.exit_code == 0, result.output

    assert checkpoint_rows(checkpoints, gone) == 0
    assert checkpoint_rows(checkpoints, kept) > 0  # only that run's
    assert [r.id for r in store.list_runs()] == [kept]


@pytest.mark.parametrize("pattern", ["%", "_", "%%%"])
def test_history_delete_treats_like_wildcards_as_characters(home: Path, pattern: str) -> None:
    run_id = Store(home / "ttdr.db").create_run("only one?", ResearchConfig(model="m"))

    result = CliRunner().invoke(app, ["history", "delete", pattern, "--yes"])

    assert result.exit_code == 2 and f"no run with id {pattern!r}" in result.stderr
    assert [r.id for r in Store(home / "ttdr.db").list_runs()] == [run_id]
