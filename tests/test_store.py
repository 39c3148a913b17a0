"""The history store on a real SQLite file: what is written is what comes back."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tests.history_fixtures import legacy_schema
from ttdr.errors import RunNotFoundError
from ttdr.liveness import current_owner
from ttdr.models import (
    Citation,
    CitationCounts,
    DraftVersion,
    EventKind,
    GenerationTotals,
    Plan,
    PlanSection,
    QAPair,
    Report,
    ResearchConfig,
    RunEvent,
    RunStats,
    RunStatus,
    Stage,
    StageTotals,
)
from ttdr.store import Store


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "history.db"


def test_a_full_run_round_trips_through_a_reopened_file(db: Path) -> None:
    store = Store(db)
    config = ResearchConfig(iterations=1, search="local", model="m")
    run_id = store.create_run("What is BM25?", config)
    store.save_plan(run_id, Plan(sections=[PlanSection(title="Scoring", question="How?")]))
    store.add_draft(
        run_id, DraftVersion(iteration=0, text="## Scoring\n\nR0", changed_sections=["Scoring"])
    )
    store.add_draft(run_id, DraftVersion(iteration=1, text="## Scoring\n\nR1 [1]"))
    source = store.add_source(run_id, url="file:///a.md", title="A", kind="local", excerpt="bm25")
    store.add_qa(
        run_id,
        QAPair(iteration=1, section="Scoring", question="q", answer="a [1]", source_numbers=[1]),
    )
    citation = Citation(number=1, source_number=1, title="A", url="file:///a.md")
    store.save_report(
        Report(run_id=run_id, question="What is BM25?", body="# R\n\nx [1]", references=[citation])
    )
    store.add_event(
        RunEvent(
            run_id=run_id, stage=Stage.plan, kind=EventKind.finished, message="ok", data={"n": 1}
        )
    )
    stats = RunStats(
        model="m",
        generation=GenerationTotals(tokens=5),
        stages={"plan": StageTotals(tokens=5, wall_s=0.5)},
        prompts={"plan": 3},
        citations=CitationCounts(markers=2, kept=2, validity_rate=1.0, grounding="strict"),
        judge_scores={"plan": [7.5]},
    )
    store.save_stats(run_id, stats)
    store.set_status(run_id, RunStatus.done)
    store.close()

    reopened = Store(db).get_run(run_id)
    assert reopened.status is RunStatus.done and reopened.finished_at is not None
    assert reopened.config == config
    assert reopened.plan.titles() == ["Scoring"]
    assert [d.text for d in reopened.drafts_list] == ["## Scoring\n\nR0", "## Scoring\n\nR1 [1]"]
    assert reopened.drafts_list[0].changed_sections == ["Scoring"]
    assert reopened.qa_pairs[0].source_numbers == [1]
    assert reopened.sources_list == [source]
    assert reopened.report.references == [citation]
    assert reopened.report.markdown.endswith("[1] A — file:///a.md\n")
    assert reopened.stats == stats
    assert reopened.created_at.tzinfo is not None
    assert [e.data for e in Store(db).events(run_id)] == [{"n": 1}]


def test_sources_are_numbered_per_run_and_a_url_keeps_its_number(db: Path) -> None:
    store = Store(db)
    first = store.create_run("one", ResearchConfig())
    second = store.create_run("two", ResearchConfig())
    a = store.add_source(first, url="https://a", title="A", kind="web", excerpt="")
    b = store.add_source(first, url="https://b", title="", kind="web", excerpt="")
    again = store.add_source(first, url="https://a", title="A2", kind="web", excerpt="")
    other = store.add_source(second, url="https://b", title="B", kind="web", excerpt="")
    assert (a.number, b.number, again.number, other.number) == (1, 2, 1, 1)
    assert b.title == "https://b"  # an untitled page is listed by its address


def test_history_lists_newest_first_filters_and_resolves_prefixes(db: Path) -> None:
    store = Store(db)
    ids = [store.create_run(f"q{i}", ResearchConfig()) for i in range(3)]
    store.set_status(ids[0], RunStatus.failed, "boom")
    assert [r.id for r in store.list_runs()] == ids[::-1]
    failed = store.list_runs(status=RunStatus.failed)
    assert [(r.id, r.error) for r in failed] == [(ids[0], "boom")]
    assert store.resolve_id(ids[1][:8]) == ids[1]
    with pytest.raises(RunNotFoundError, match="history list"):
        store.resolve_id("nope")


def test_delete_removes_the_run_and_everything_saved_with_it(db: Path) -> None:
    store = Store(db)
    keep = store.create_run("keep", ResearchConfig())
    gone = store.create_run("gone", ResearchConfig())
    for run_id in (keep, gone):
        store.add_draft(run_id, DraftVersion(iteration=0, text="d"))
        store.add_source(run_id, url="u", title="t", kind="web", excerpt="")
    store.delete_run(gone)
    with pytest.raises(RunNotFoundError):
        store.get_run(gone)
    assert len(store.drafts(keep)) == 1 and len(store.sources(keep)) == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM drafts WHERE run_id=?", (gone,)).fetchone() == (
            0,
        )


def test_the_database_uses_write_ahead_logging(db: Path) -> None:
    Store(db).create_run("q", ResearchConfig())
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_a_run_whose_process_died_unheard_is_interrupted_with_its_drafts_kept(db: Path) -> None:
    """A process that ends without marking its run (as SIGKILL or the OOM killer leave it)."""
    script = (
        "import sys; from ttdr.store import Store; from ttdr.models import *\n"
        "store = Store(sys.argv[1]); run_id = store.create_run('q?', ResearchConfig(model='m'))\n"
        "store.add_draft(run_id, DraftVersion(iteration=0, text='R0'))\n"
        "print(run_id)\n"
    )
    done = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, text=True)
    run_id = done.stdout.strip()
    assert done.returncode == 0, done.stderr

    store = Store(db)
    (run,) = store.list_runs()
    assert run.id == run_id and run.status is RunStatus.interrupted
    assert f"ttdr research --resume {run_id}" in run.error and run.finished_at is not None
    assert [d.text for d in store.drafts(run_id)] == ["R0"]
    assert store.events(run_id)[-1].kind is EventKind.error
    assert store.mark_orphaned_runs() == []  # marked once


def test_runs_of_live_processes_and_of_other_machines_stay_running(db: Path) -> None:
    store = Store(db)
    ours = store.create_run("mine?", ResearchConfig(model="m"))
    elsewhere = store.create_run("theirs?", ResearchConfig(model="m"))
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET owner = 'another-host:1:1' WHERE id = ?", (elsewhere,))
    assert {r.id: r.status for r in store.list_runs()} == {
        ours: RunStatus.running,
        elsewhere: RunStatus.running,
    }


def test_a_reused_pid_does_not_keep_a_dead_run_running(db: Path) -> None:
    store = Store(db)
    run_id = store.create_run("q?", ResearchConfig(model="m"))
    host, pid, start = current_owner().split(":")
    assert start, "this machine has /proc start times"
    with sqlite3.connect(db) as conn:  # our pid, but a process that started at another time
        conn.execute("UPDATE runs SET owner = ? WHERE id = ?", (f"{host}:{pid}:1", run_id))
    assert store.get_run(run_id).status is RunStatus.interrupted


def test_a_history_written_before_runs_had_owners_still_opens(db: Path) -> None:
    old = "0123456789ab"
    with sqlite3.connect(db) as conn:
        conn.executescript(legacy_schema(owners=False))
        conn.execute(
            "INSERT INTO runs VALUES (?, 'old?', 'm', ?, 'running', ?, ?, NULL, NULL, NULL, '{}')",
            (old, ResearchConfig(model="m").model_dump_json(), "2025-06-01 10:00:00", "2025-06-01"),
        )
    store = Store(db)
    new = store.create_run("new?", ResearchConfig(model="m"))
    assert {r.id: r.status for r in store.list_runs()} == {
        old: RunStatus.running,  # no owner recorded: nothing to judge by
        new: RunStatus.running,
    }


@pytest.mark.parametrize("pattern", ["%", "_", "%%", "____________", "a%", "%_"])
def test_id_prefixes_are_matched_literally_not_as_like_patterns(db: Path, pattern: str) -> None:
    store = Store(db)
    run_id = store.create_run("only one", ResearchConfig())
    with pytest.raises(RunNotFoundError, match="no run with id"):
        store.resolve_id(pattern)
    with pytest.raises(RunNotFoundError):
        store.delete_run(pattern)
    assert [r.id for r in store.list_runs()] == [run_id]
    assert store.resolve_id(run_id[:3]) == run_id  # a real prefix still resolves


def test_stats_written_by_earlier_versions_stay_readable(db: Path) -> None:
    """Earlier versions stored an untyped dict: keys since dropped are ignored, and a run
    that ended before its report had `citations: {}`."""
    store = Store(db)
    run_id = store.create_run("q", ResearchConfig())
    old = {"wall_s": 1.25, "citations": {}, "generation": {"tokens": 9}, "retired_key": 1}
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET stats = ? WHERE id = ?", (json.dumps(old), run_id))
    stats = store.get_run(run_id).stats
    assert (stats.wall_s, stats.citations, stats.generation.tokens) == (1.25, None, 9)
