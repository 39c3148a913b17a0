"""The research history: one SQLite file (WAL), written as a run progresses.

Times are stored and returned as timezone-aware UTC.

Every write commits on its own, so a crash or Ctrl-C keeps everything up to the last event:
the plan, each draft version, each Q/A pair and source, and the run's status and error.
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import UniqueConstraint, event, update
from sqlmodel import Field, Session, SQLModel, col, create_engine, delete, func, select

from ttdr.errors import RunNotFoundError
from ttdr.liveness import current_owner, owner_is_gone
from ttdr.models import (
    Citation,
    DraftVersion,
    EventKind,
    Plan,
    QAPair,
    Report,
    ResearchConfig,
    RunDetail,
    RunEvent,
    RunStatus,
    RunSummary,
    Source,
    Stage,
    utc_now,
)

MAX_EXCERPT_CHARS = 24000
ORPHANED = (
    "the process running it ended without recording why (killed or crashed); its drafts are "
    "kept: `ttdr research --resume {run_id}` continues it"
)


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    id: str = Field(primary_key=True)
    question: str
    model: str
    config_json: str
    status: str = Field(index=True)
    created_at: datetime = Field(index=True)
    updated_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    plan_json: str | None = None
    stats_json: str = "{}"
    owner: str | None = None  # the process running it (ttdr.liveness), to tell a killed run


class DraftRow(SQLModel, table=True):
    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("run_id", "iteration"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", index=True)
    iteration: int
    text: str
    changed_json: str = "[]"
    created_at: datetime


class QARow(SQLModel, table=True):
    __tablename__ = "qa_pairs"
    __table_args__ = (UniqueConstraint("run_id", "iteration", "question"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", index=True)
    iteration: int
    section: str
    question: str
    answer: str
    sources_json: str = "[]"


class SourceRow(SQLModel, table=True):
    __tablename__ = "sources"
    __table_args__ = (UniqueConstraint("run_id", "number"), UniqueConstraint("run_id", "url"))
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", index=True)
    number: int
    url: str
    title: str
    kind: str
    excerpt: str = ""
    retrieved_at: datetime


class ReportRow(SQLModel, table=True):
    __tablename__ = "reports"
    run_id: str = Field(primary_key=True, foreign_key="runs.id", ondelete="CASCADE")
    body: str
    references_json: str
    created_at: datetime


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", index=True)
    stage: str
    kind: str
    message: str
    iteration: int | None = None
    data_json: str = "{}"
    elapsed_s: float = 0.0
    created_at: datetime


class Store:
    def __init__(self, db_path: Path) -> None:
        self.path = Path(db_path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.engine = create_engine(
            f"sqlite:///{self.path}", connect_args={"check_same_thread": False, "timeout": 30}
        )
        event.listen(self.engine, "connect", _set_pragmas)
        SQLModel.metadata.create_all(self.engine)
        _add_missing_columns(self.engine)
        self._source_lock = threading.Lock()

    def close(self) -> None:
        self.engine.dispose()

    # -- runs ---------------------------------------------------------------------------

    def create_run(self, question: str, config: ResearchConfig) -> str:
        run_id = uuid.uuid4().hex[:12]
        now = utc_now()
        row = RunRow(
            id=run_id,
            question=question,
            model=config.model,
            config_json=config.model_dump_json(),
            status=RunStatus.running.value,
            created_at=now,
            updated_at=now,
            owner=current_owner(),
        )
        with Session(self.engine) as session:
            session.add(row)
            session.commit()
        return run_id

    def set_status(self, run_id: str, status: RunStatus, error: str | None = None) -> None:
        with Session(self.engine) as session:
            row = self._run_row(session, run_id)
            now = utc_now()
            row.status = status.value
            row.updated_at = now
            row.error = error
            row.finished_at = None if status is RunStatus.running else now
            if status is RunStatus.running:
                row.owner = current_owner()  # a resumed run belongs to its new process
            session.add(row)
            session.commit()

    def save_plan(self, run_id: str, plan: Plan) -> None:
        self._update_run(run_id, plan_json=plan.model_dump_json())

    def save_stats(self, run_id: str, stats: dict[str, Any]) -> None:
        self._update_run(run_id, stats_json=json.dumps(stats))

    def resolve_id(self, run_id: str) -> str:
        """Accept a full id or an unambiguous prefix, as users copy short ids from lists."""
        run_id = run_id.strip()
        with Session(self.engine) as session:
            if run_id and session.get(RunRow, run_id) is not None:
                return run_id
            matches = session.exec(
                select(RunRow.id).where(col(RunRow.id).startswith(run_id)).limit(2)
            ).all()
        if len(matches) == 1 and run_id:
            return matches[0]
        if len(matches) > 1:
            raise RunNotFoundError(f"run id {run_id!r} is ambiguous: give more characters.")
        raise RunNotFoundError(
            f"no run with id {run_id!r}: `ttdr history list` shows the ids that exist."
        )

    def mark_orphaned_runs(self) -> list[str]:
        """Runs whose process died without a word (SIGKILL, the OOM killer, a power cut)
        become `interrupted`, so the history tells the truth and offers to resume them."""
        with Session(self.engine) as session:
            running = session.exec(select(RunRow).where(RunRow.status == RunStatus.running.value))
            orphans = [(row.id, row.owner) for row in running if owner_is_gone(row.owner)]
        marked = []
        for run_id, owner in orphans:
            with Session(self.engine) as session:
                last_seen = session.exec(
                    select(func.max(EventRow.created_at)).where(EventRow.run_id == run_id)
                ).one()
                changed = session.exec(  # only if no one resumed it meanwhile
                    update(RunRow)
                    .where(col(RunRow.id) == run_id)
                    .where(col(RunRow.status) == RunStatus.running.value)
                    .where(col(RunRow.owner) == owner)
                    .values(
                        status=RunStatus.interrupted.value,
                        error=ORPHANED.format(run_id=run_id),
                        finished_at=last_seen or utc_now(),
                        updated_at=utc_now(),
                    )
                ).rowcount
                if changed:
                    message = "Interrupted: " + ORPHANED.format(run_id=run_id)
                    session.add(
                        EventRow(
                            run_id=run_id,
                            stage=Stage.run.value,
                            kind=EventKind.error.value,
                            message=message,
                            created_at=utc_now(),
                        )
                    )
                session.commit()
            if changed:
                marked.append(run_id)
        return marked

    def list_runs(self, *, limit: int = 50, status: RunStatus | None = None) -> list[RunSummary]:
        self.mark_orphaned_runs()
        with Session(self.engine) as session:
            query = select(RunRow).order_by(col(RunRow.created_at).desc()).limit(limit)
            if status is not None:
                query = query.where(RunRow.status == status.value)
            rows = session.exec(query).all()
            return [self._summary(session, row) for row in rows]

    def get_run(self, run_id: str) -> RunDetail:
        run_id = self.resolve_id(run_id)
        self.mark_orphaned_runs()
        with Session(self.engine) as session:
            row = self._run_row(session, run_id)
            summary = self._summary(session, row)
        return RunDetail(
            **summary.model_dump(),
            config=ResearchConfig.model_validate_json(row.config_json),
            plan=Plan.model_validate_json(row.plan_json) if row.plan_json else None,
            drafts_list=self.drafts(run_id),
            qa_pairs=self.qa_pairs(run_id),
            sources_list=self.sources(run_id),
            report=self.report(run_id),
            stats=json.loads(row.stats_json),
        )

    def delete_run(self, run_id: str) -> str:
        run_id = self.resolve_id(run_id)
        with Session(self.engine) as session:
            for table in (EventRow, DraftRow, QARow, SourceRow, ReportRow):
                session.exec(delete(table).where(table.run_id == run_id))
            session.exec(delete(RunRow).where(RunRow.id == run_id))
            session.commit()
        return run_id

    # -- run contents ---------------------------------------------------------------------

    def add_draft(self, run_id: str, draft: DraftVersion) -> None:
        """One version per iteration: a step re-run after a resume replaces its own draft."""
        with Session(self.engine) as session:
            row = session.exec(
                select(DraftRow).where(
                    DraftRow.run_id == run_id, DraftRow.iteration == draft.iteration
                )
            ).first() or DraftRow(run_id=run_id, iteration=draft.iteration)
            row.text = draft.text
            row.changed_json = json.dumps(draft.changed_sections)
            row.created_at = draft.created_at
            session.add(row)
            session.commit()

    def drafts(self, run_id: str) -> list[DraftVersion]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(DraftRow).where(DraftRow.run_id == run_id).order_by(col(DraftRow.id))
            ).all()
        return [
            DraftVersion(
                iteration=r.iteration,
                text=r.text,
                changed_sections=json.loads(r.changed_json),
                created_at=r.created_at,
            )
            for r in rows
        ]

    def add_qa(self, run_id: str, qa: QAPair) -> None:
        """Keyed by step and question, so a re-run branch replaces its own answer."""
        with Session(self.engine) as session:
            row = session.exec(
                select(QARow).where(
                    QARow.run_id == run_id,
                    QARow.iteration == qa.iteration,
                    QARow.question == qa.question,
                )
            ).first() or QARow(run_id=run_id, iteration=qa.iteration, question=qa.question)
            row.section = qa.section
            row.answer = qa.answer
            row.sources_json = json.dumps(qa.source_numbers)
            session.add(row)
            session.commit()

    def qa_pairs(self, run_id: str) -> list[QAPair]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(QARow).where(QARow.run_id == run_id).order_by(col(QARow.id))
            ).all()
        return [
            QAPair(
                iteration=r.iteration,
                section=r.section,
                question=r.question,
                answer=r.answer,
                source_numbers=json.loads(r.sources_json),
            )
            for r in rows
        ]

    def add_source(self, run_id: str, *, url: str, title: str, kind: str, excerpt: str) -> Source:
        """Number a retrieved document within its run; the same URL keeps its first number.

        The excerpt accumulates every passage the run used from the document, because that
        text is what its citations are checked against.
        """
        with self._source_lock, Session(self.engine) as session:
            row = session.exec(
                select(SourceRow).where(SourceRow.run_id == run_id, SourceRow.url == url)
            ).first()
            if row is not None:
                if excerpt and excerpt not in row.excerpt:
                    row.excerpt = f"{row.excerpt}\n\n{excerpt}".strip()[:MAX_EXCERPT_CHARS]
                    session.add(row)
                    session.commit()
                    session.refresh(row)
                return _source(row)
            count = session.exec(
                select(func.count()).select_from(SourceRow).where(SourceRow.run_id == run_id)
            ).one()
            row = SourceRow(
                run_id=run_id,
                number=count + 1,
                url=url,
                title=title or url,
                kind=kind,
                excerpt=excerpt[:MAX_EXCERPT_CHARS],
                retrieved_at=utc_now(),
            )
            session.add(row)
            session.commit()
            session.refresh(row)
            return _source(row)

    def sources(self, run_id: str) -> list[Source]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(SourceRow).where(SourceRow.run_id == run_id).order_by(col(SourceRow.number))
            ).all()
        return [_source(r) for r in rows]

    def save_report(self, report: Report) -> None:
        with Session(self.engine) as session:
            row = session.get(ReportRow, report.run_id) or ReportRow(run_id=report.run_id)
            row.body = report.body
            row.references_json = json.dumps([c.model_dump() for c in report.references])
            row.created_at = report.created_at
            session.add(row)
            session.commit()

    def report(self, run_id: str) -> Report | None:
        with Session(self.engine) as session:
            row = session.get(ReportRow, run_id)
            run = session.get(RunRow, run_id)
        if row is None or run is None:
            return None
        return Report(
            run_id=run_id,
            question=run.question,
            body=row.body,
            references=[Citation(**c) for c in json.loads(row.references_json)],
            created_at=row.created_at,
        )

    def add_event(self, run_event: RunEvent) -> None:
        self._add(
            EventRow(
                run_id=run_event.run_id,
                stage=run_event.stage.value,
                kind=run_event.kind.value,
                message=run_event.message,
                iteration=run_event.iteration,
                data_json=json.dumps(run_event.data, default=str),
                elapsed_s=run_event.elapsed_s,
                created_at=run_event.created_at,
            )
        )

    def events(self, run_id: str) -> list[RunEvent]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(EventRow).where(EventRow.run_id == run_id).order_by(col(EventRow.id))
            ).all()
        return [
            RunEvent(
                run_id=r.run_id,
                stage=r.stage,
                kind=r.kind,
                message=r.message,
                iteration=r.iteration,
                data=json.loads(r.data_json),
                elapsed_s=r.elapsed_s,
                created_at=r.created_at,
            )
            for r in rows
        ]

    # -- helpers --------------------------------------------------------------------------

    def _add(self, row: SQLModel) -> None:
        with Session(self.engine) as session:
            session.add(row)
            session.commit()

    def _update_run(self, run_id: str, **fields: Any) -> None:
        with Session(self.engine) as session:
            row = self._run_row(session, run_id)
            for name, value in fields.items():
                setattr(row, name, value)
            row.updated_at = utc_now()
            session.add(row)
            session.commit()

    @staticmethod
    def _run_row(session: Session, run_id: str) -> RunRow:
        row = session.get(RunRow, run_id)
        if row is None:
            raise RunNotFoundError(f"no run with id {run_id!r}")
        return row

    @staticmethod
    def _summary(session: Session, row: RunRow) -> RunSummary:
        def count(table: type[SQLModel]) -> int:
            query = select(func.count()).select_from(table).where(table.run_id == row.id)
            return session.exec(query).one()

        return RunSummary(
            id=row.id,
            question=row.question,
            status=RunStatus(row.status),
            created_at=row.created_at,
            finished_at=row.finished_at,
            error=row.error,
            model=row.model,
            drafts=count(DraftRow),
            sources=count(SourceRow),
        )


class PromptRow(SQLModel, table=True):
    """One version of a component's prompt; fitness is the mean judge score of its outputs."""

    __tablename__ = "prompt_versions"
    id: int | None = Field(default=None, primary_key=True)
    component: str = Field(index=True)
    text: str
    parent_id: int | None = None
    fitness: float | None = None
    uses: int = 0
    scored: int = 0
    note: str = ""
    created_at: datetime


class PromptStore:
    """The prompt population, in the same database as the history."""

    def __init__(self, store: Store) -> None:
        self.engine = store.engine

    def versions(self, component: str | None = None) -> list[PromptRow]:
        with Session(self.engine) as session:
            query = select(PromptRow).order_by(col(PromptRow.component), col(PromptRow.id))
            if component is not None:
                query = query.where(PromptRow.component == component)
            return list(session.exec(query).all())

    def get(self, prompt_id: int) -> PromptRow | None:
        with Session(self.engine) as session:
            return session.get(PromptRow, prompt_id)

    def add(
        self, component: str, text: str, *, parent_id: int | None = None, note: str = ""
    ) -> PromptRow:
        row = PromptRow(
            component=component, text=text, parent_id=parent_id, note=note, created_at=utc_now()
        )
        with Session(self.engine) as session:
            session.add(row)
            session.commit()
            session.refresh(row)
            return row

    def record(self, prompt_id: int, score: float | None) -> None:
        """Count a use; a judged use moves the fitness towards its score (a running mean)."""
        with Session(self.engine) as session:
            row = session.get(PromptRow, prompt_id)
            if row is None:
                return
            row.uses += 1
            if score is not None:
                row.scored += 1
                previous = row.fitness or 0.0
                row.fitness = previous + (score - previous) / row.scored
            session.add(row)
            session.commit()

    def remove(self, prompt_id: int) -> None:
        with Session(self.engine) as session:
            session.exec(delete(PromptRow).where(PromptRow.id == prompt_id))
            session.commit()

    def reset(self, component: str | None = None) -> int:
        with Session(self.engine) as session:
            query = delete(PromptRow)
            if component is not None:
                query = query.where(PromptRow.component == component)
            result = session.exec(query)
            session.commit()
            return result.rowcount


def _source(row: SourceRow) -> Source:
    return Source(
        number=row.number,
        url=row.url,
        title=row.title,
        kind=row.kind,
        excerpt=row.excerpt,
        retrieved_at=row.retrieved_at,
    )


def _set_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _add_missing_columns(engine) -> None:
    """`create_all` makes missing tables, not missing columns: add the ones later versions
    introduced, so a history written by an earlier ttdr keeps working."""
    with engine.begin() as connection:
        present = {row[1] for row in connection.exec_driver_sql("PRAGMA table_info(runs)")}
        if "owner" not in present:
            connection.exec_driver_sql("ALTER TABLE runs ADD COLUMN owner VARCHAR")
