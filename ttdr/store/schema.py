"""The history's tables as SQLModel rows.

Structured values (a run's config, plan and stats, a draft's changed sections, an event's data)
are JSON columns: the rows hold plain dicts and lists, and the domain models are validated
from them in `convert`. The tables themselves are made by `migrations`, never by
`create_all`, so that every database, old or new, goes through the same versioned steps; a
test checks that the migrated schema and these classes agree.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, UniqueConstraint
from sqlmodel import Field, SQLModel


class RunRow(SQLModel, table=True):
    __tablename__ = "runs"
    id: str = Field(primary_key=True)
    question: str
    model: str
    config: dict[str, Any] = Field(sa_type=JSON)
    status: str = Field(index=True)
    created_at: datetime = Field(index=True)
    updated_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    plan: dict[str, Any] | None = Field(default=None, sa_type=JSON(none_as_null=True))
    stats: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    owner: str | None = None  # the process running it (ttdr.liveness), to tell a killed run


class DraftRow(SQLModel, table=True):
    __tablename__ = "drafts"
    __table_args__ = (UniqueConstraint("run_id", "iteration"),)
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", index=True)
    iteration: int
    text: str
    changed_sections: list[str] = Field(default_factory=list, sa_type=JSON)
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
    source_numbers: list[int] = Field(default_factory=list, sa_type=JSON)


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
    citations: list[dict[str, Any]] = Field(sa_type=JSON)  # the references list
    created_at: datetime


class EventRow(SQLModel, table=True):
    __tablename__ = "events"
    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(foreign_key="runs.id", ondelete="CASCADE", index=True)
    stage: str
    kind: str
    message: str
    iteration: int | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_type=JSON)
    elapsed_s: float = 0.0
    created_at: datetime


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
