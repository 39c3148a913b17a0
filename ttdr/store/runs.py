"""The research history: runs and what each produced, written as a run progresses.

Every write commits on its own, so a crash or Ctrl-C keeps everything up to the last event:
the plan, each draft version, each Q/A pair and source, and the run's status and error.
`Store` is the `ttdr.recording.RunRecorder` the agent writes through.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

from sqlmodel import Session, SQLModel, col, delete, func, select

from ttdr.errors import RunNotFoundError
from ttdr.liveness import current_owner
from ttdr.models import (
    DraftVersion,
    Plan,
    QAPair,
    Report,
    ResearchConfig,
    RunDetail,
    RunEvent,
    RunStats,
    RunStatus,
    RunSummary,
    Source,
    utc_now,
)
from ttdr.store import convert
from ttdr.store.database import open_engine
from ttdr.store.orphans import mark_orphaned_runs
from ttdr.store.schema import DraftRow, EventRow, QARow, ReportRow, RunRow, SourceRow

MAX_EXCERPT_CHARS = 24000
MAX_ID_CHARS = 64  # run ids are 12 hex digits; longer text is not one


class Store:
    """One SQLite file (WAL) that several processes share; times are timezone-aware UTC."""

    def __init__(self, db_path: Path | str) -> None:
        self.path = Path(db_path)
        self.engine = open_engine(self.path)
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
            config=config.model_dump(mode="json"),
            status=RunStatus.running.value,
            created_at=now,
            updated_at=now,
            owner=current_owner(),
        )
        self._add(row)
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
        self._update_run(run_id, plan=plan.model_dump(mode="json"))

    def save_stats(self, run_id: str, stats: RunStats) -> None:
        self._update_run(run_id, stats=convert.stats_column(stats))

    def resolve_id(self, run_id: str) -> str:
        """Accept a full id or an unambiguous prefix, as users copy short ids from lists.

        The prefix is matched literally: `%` and `_` are characters, not LIKE wildcards.
        """
        run_id = run_id.strip()
        if len(run_id) > MAX_ID_CHARS or not run_id.isascii():
            # Ids are hex: such text cannot start one, and SQLite would refuse it as a
            # pattern (too long) or as text (undecodable argv bytes arrive as surrogates).
            raise RunNotFoundError(
                f"no run with id {run_id[:MAX_ID_CHARS]!r}: `ttdr history list` shows the ids."
            )
        with Session(self.engine) as session:
            if run_id and session.get(RunRow, run_id) is not None:
                return run_id
            matches = session.exec(
                select(RunRow.id).where(col(RunRow.id).startswith(run_id, autoescape=True)).limit(2)
            ).all()
        if len(matches) == 1 and run_id:
            return matches[0]
        if len(matches) > 1:
            raise RunNotFoundError(f"run id {run_id!r} is ambiguous: give more characters.")
        raise RunNotFoundError(
            f"no run with id {run_id!r}: `ttdr history list` shows the ids that exist."
        )

    def mark_orphaned_runs(self) -> list[str]:
        """Runs whose process died unheard become `interrupted` (see `orphans`)."""
        return mark_orphaned_runs(self.engine)

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
            config=ResearchConfig.model_validate(row.config),
            plan=Plan.model_validate(row.plan) if row.plan else None,
            drafts_list=self.drafts(run_id),
            qa_pairs=self.qa_pairs(run_id),
            sources_list=self.sources(run_id),
            report=self.report(run_id),
            stats=RunStats.model_validate(row.stats or {}),
        )

    def delete_run(self, run_id: str) -> str:
        """Delete a run's rows. Its LangGraph checkpoints live in another file:
        `Researcher.delete_run` removes both."""
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
            row.sqlmodel_update(draft.model_dump())
            session.add(row)
            session.commit()

    def drafts(self, run_id: str) -> list[DraftVersion]:
        return self._contents(DraftVersion, DraftRow, run_id, order=DraftRow.id)

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
            row.sqlmodel_update(qa.model_dump())
            session.add(row)
            session.commit()

    def qa_pairs(self, run_id: str) -> list[QAPair]:
        return self._contents(QAPair, QARow, run_id, order=QARow.id)

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
                return convert.to_model(Source, row)
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
            return convert.to_model(Source, row)

    def sources(self, run_id: str) -> list[Source]:
        return self._contents(Source, SourceRow, run_id, order=SourceRow.number)

    def save_report(self, report: Report) -> None:
        with Session(self.engine) as session:
            row = session.get(ReportRow, report.run_id) or ReportRow(run_id=report.run_id)
            row.sqlmodel_update(convert.report_row(report))
            session.add(row)
            session.commit()

    def report(self, run_id: str) -> Report | None:
        with Session(self.engine) as session:
            row = session.get(ReportRow, run_id)
            run = session.get(RunRow, run_id)
        if row is None or run is None:
            return None
        return convert.to_report(row, run.question, (run.config or {}).get("language"))

    def add_event(self, run_event: RunEvent) -> None:
        self._add(convert.event_row(run_event))

    def events(self, run_id: str) -> list[RunEvent]:
        return self._contents(RunEvent, EventRow, run_id, order=EventRow.id)

    # -- helpers --------------------------------------------------------------------------

    def _add(self, row: SQLModel) -> None:
        with Session(self.engine) as session:
            session.add(row)
            session.commit()

    def _contents(self, model: type, table: type[SQLModel], run_id: str, *, order: Any) -> list:
        with Session(self.engine) as session:
            rows = session.exec(
                select(table).where(table.run_id == run_id).order_by(col(order))
            ).all()
            return [convert.to_model(model, row) for row in rows]

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

        return convert.to_summary(row, drafts=count(DraftRow), sources=count(SourceRow))
