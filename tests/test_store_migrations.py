"""The history's migration ladder on real SQLite files: old histories open with every row
intact, the ladder builds exactly the schema the tables declare, and a failed or foreign
climb leaves the file as it was."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import SQLModel, create_engine

from tests.history_fixtures import DONE, FAILED, STATS, write_legacy_history
from ttdr.errors import HistoryDatabaseError
from ttdr.models import Citation, DraftVersion, ResearchConfig, RunStats, RunStatus
from ttdr.store import PromptStore, Store, migrations


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "ttdr.db"


def user_version(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("PRAGMA user_version").fetchone()[0]


def columns(db: Path, table: str) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[1] for row in conn.execute(f"PRAGMA table_info({table})")]


def test_a_history_from_before_the_ladder_opens_with_every_row_intact(db: Path) -> None:
    write_legacy_history(db)
    assert user_version(db) == 0

    store = Store(db)
    run = store.get_run(DONE)
    assert run.status is RunStatus.done and run.model == "m"
    assert run.created_at == datetime(2025, 6, 1, 10, tzinfo=UTC)
    assert run.config == ResearchConfig(model="m", iterations=1, search="local")
    assert run.plan.titles() == ["Scoring"]
    assert [(d.iteration, d.text, d.changed_sections) for d in run.drafts_list] == [
        (0, "## Scoring\n\nR0", ["Scoring"]),
        (1, "## Scoring\n\nR1 [1]", []),
    ]
    assert [(q.question, q.answer, q.source_numbers) for q in run.qa_pairs] == [("q", "a [1]", [1])]
    assert [(s.number, s.url, s.excerpt) for s in run.sources_list] == [
        (1, "file:///a.md", "bm25 text")
    ]
    assert run.report.body == "# R\n\nx [1]"
    assert run.report.references == [
        Citation(number=1, source_number=1, title="A", url="file:///a.md")
    ]
    assert [e.data for e in store.events(DONE)] == [{"n": 1, "path": "/x"}]
    # The old untyped stats read as the typed model, field for field.
    assert run.stats == RunStats.model_validate(STATS)
    assert run.stats.generation.forward_passes == 40
    assert run.stats.stages["plan"].wall_s == 0.75
    assert run.stats.citations.sentences_cited == 2 and run.stats.judge_scores["plan"] == [6.5, 8]

    failed = store.get_run(FAILED)
    assert failed.status is RunStatus.failed and failed.error == "ValueError: x"
    assert failed.report is None and failed.stats.citations is None  # was stored as {}
    (prompt,) = PromptStore(store).versions()
    assert (prompt.text, prompt.fitness, prompt.uses, prompt.note) == (
        "Plan {question}",
        7.25,
        2,
        "seed",
    )

    assert user_version(db) == migrations.SCHEMA_VERSION
    assert not [c for c in columns(db, "runs") if c.endswith("_json")]
    # ...and it keeps working: new rows beside the old ones.
    store.add_draft(DONE, DraftVersion(iteration=2, text="R2"))
    new = store.create_run("new?", ResearchConfig(model="m"))
    assert len(store.drafts(DONE)) == 3
    assert {r.id for r in store.list_runs()} == {DONE, FAILED, new}


def test_the_ladder_builds_exactly_the_schema_the_tables_declare(tmp_path: Path) -> None:
    """The steps are frozen SQL and the row classes are the code's view: they must agree."""
    migrated, declared = tmp_path / "migrated.db", tmp_path / "declared.db"
    Store(migrated).close()
    engine = create_engine(f"sqlite:///{declared}")
    SQLModel.metadata.create_all(engine)
    engine.dispose()

    def shape(db: Path) -> dict[str, tuple]:
        with sqlite3.connect(db) as conn:
            tables = {}
            for table in SQLModel.metadata.tables:
                cols = {(r[1], r[3], r[5]) for r in conn.execute(f"PRAGMA table_info({table})")}
                indexes = set()
                for _, name, unique, *_ in conn.execute(f"PRAGMA index_list({table})"):
                    keys = tuple(r[2] for r in conn.execute(f"PRAGMA index_info('{name}')"))
                    indexes.add((bool(unique), keys))
                tables[table] = (cols, indexes)
            return tables

    assert shape(migrated) == shape(declared)
    assert all(cols for cols, _ in shape(migrated).values())


def test_opening_a_current_history_again_migrates_nothing(db: Path) -> None:
    Store(db).create_run("q", ResearchConfig())
    assert migrations.migrate(db) == migrations.SCHEMA_VERSION


def test_a_history_from_a_newer_ttdr_is_refused_and_left_alone(db: Path) -> None:
    run_id = Store(db).create_run("q", ResearchConfig())
    with sqlite3.connect(db) as conn:
        conn.execute(f"PRAGMA user_version = {migrations.SCHEMA_VERSION + 1}")
    before = db.read_bytes()
    with pytest.raises(HistoryDatabaseError, match="newer ttdr") as raised:
        Store(db)
    assert str(db) in str(raised.value) and "\n" not in str(raised.value)
    assert db.read_bytes() == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT id FROM runs").fetchall() == [(run_id,)]


def test_a_step_that_fails_leaves_the_history_as_it_was(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The climb is one transaction: a failure after a step has run undoes that step too."""
    write_legacy_history(db)

    def broken(conn: sqlite3.Connection) -> None:
        raise RuntimeError("a step that fails")

    monkeypatch.setattr(migrations, "STEPS", (*migrations.STEPS, broken))
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", len(migrations.STEPS))
    with pytest.raises(RuntimeError, match="a step that fails"):
        Store(db)
    assert user_version(db) == 0
    assert "config_json" in columns(db, "runs")  # the renaming step was rolled back

    monkeypatch.undo()
    assert Store(db).get_run(DONE).report is not None
