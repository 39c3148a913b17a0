"""Rows to domain models and back.

Most rows name their columns as the models name their fields, so pydantic reads them
directly (`from_attributes`); only what differs is spelled out here.
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import BaseModel
from sqlmodel import SQLModel

from ttdr.language import output_language
from ttdr.models import Citation, Report, RunEvent, RunStats, RunStatus, RunSummary
from ttdr.store.schema import EventRow, ReportRow, RunRow

Model = TypeVar("Model", bound=BaseModel)


def to_model(model: type[Model], row: SQLModel) -> Model:
    return model.model_validate(row, from_attributes=True)


def to_summary(row: RunRow, *, drafts: int, sources: int) -> RunSummary:
    return RunSummary(
        id=row.id,
        question=row.question,
        status=RunStatus(row.status),
        created_at=row.created_at,
        finished_at=row.finished_at,
        error=row.error,
        model=row.model,
        drafts=drafts,
        sources=sources,
    )


def to_report(row: ReportRow, question: str, language: str | None = None) -> Report:
    """The report; its headings in the run's language (a run's config keeps it)."""
    return Report(
        run_id=row.run_id,
        question=question,
        body=row.body,
        references=[Citation.model_validate(c) for c in row.citations],
        created_at=row.created_at,
        language=output_language(language),
    )


def report_row(report: Report) -> dict:
    return {
        "body": report.body,
        "citations": [c.model_dump() for c in report.references],
        "created_at": report.created_at,
    }


def event_row(run_event: RunEvent) -> EventRow:
    return EventRow(
        run_id=run_event.run_id,
        stage=run_event.stage.value,
        kind=run_event.kind.value,
        message=run_event.message,
        iteration=run_event.iteration,
        data=run_event.data,
        elapsed_s=run_event.elapsed_s,
        created_at=run_event.created_at,
    )


def stats_column(stats: RunStats) -> dict:
    return stats.model_dump(mode="json", exclude_none=True)
