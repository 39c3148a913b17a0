"""Domain models shared by the CLI, the API, the agent and the store.

They are plain pydantic models so that every layer (graph state, SQLite rows, JSON export,
progress events) speaks the same vocabulary and validates it in one place.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator

from ttdr.events import EventPayload, read_payload
from ttdr.language import detect_language, normalise_language, references_heading

# searxng: the web, with its links from the SearXNG instance at TTDR_SEARXNG_URL.
SearchMode = Literal["web", "local", "auto", "searxng"]
Length = Literal["short", "medium", "long"]
Grounding = Literal["strict", "marked", "off"]
# A document collection's name (backends/search/local_index.py): safe in a path and a shell.
COLLECTION_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
# The model a run uses unless told otherwise (a preset in backends/llm/registry.py).
DEFAULT_MODEL = "smollm2-135m"


def check_collection_name(name: str) -> str:
    """`name` if it can name a collection, else a `ValueError` saying what can."""
    if not re.fullmatch(COLLECTION_NAME, name or ""):
        raise ValueError(
            f"{name!r} cannot name a collection: use letters, digits, '.', '_' and '-' (at most "
            "64, starting with a letter or digit), e.g. tides-2024"
        )
    return name


def utc_now() -> datetime:
    return datetime.now(UTC)


class RunStatus(StrEnum):
    running = "running"
    done = "done"
    failed = "failed"
    interrupted = "interrupted"
    # Planned and stopped on purpose until a person accepts or edits the plan
    # (`review_plan`); not running, so a restart leaves it waiting.
    review = "review"


class Stage(StrEnum):
    """The workflow stages, in the order a run passes through them."""

    run = "run"
    plan = "plan"
    draft = "draft"
    question = "question"
    search = "search"
    answer = "answer"
    revise = "revise"
    report = "report"
    judge = "judge"


class EventKind(StrEnum):
    started = "started"
    progress = "progress"
    finished = "finished"
    warning = "warning"
    error = "error"
    review = "review"  # the plan waits for a person's review (`review_plan`)


class ResearchConfig(BaseModel):
    """Everything that shapes one research run; stored with the run so it can be reproduced."""

    iterations: int = Field(3, ge=0, le=50, description="Denoising steps after the first draft.")
    search: SearchMode = Field(
        "auto", description="web, local index, web with local fallback, or web through SearXNG."
    )
    docs: list[Path] = Field(default_factory=list, description="Folders/files to index first.")
    collection: str | None = Field(
        None,
        pattern=f"^{COLLECTION_NAME}$",
        description="The document collection the run searches (its --docs are filed in it).",
    )
    model: str = Field(DEFAULT_MODEL, description="Registry name or local checkpoint folder.")
    max_sections: int = Field(4, ge=1, le=12, description="Upper bound on planned sections.")
    section_tokens: int = Field(160, ge=8, le=4096, description="Tokens per section write.")
    search_results: int = Field(
        12, ge=1, le=20, description="Search hits asked of each query a step runs."
    )
    passages_per_answer: int = Field(
        8, ge=1, le=12, description="Evidence passages per search step (grows with the question)."
    )
    seed: int = Field(0, description="Seed for sampling, so runs are repeatable.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 means greedy decoding.")
    questions_per_step: int = Field(
        1, ge=1, le=8, description="Search questions per denoising step, answered in parallel."
    )
    denoise: bool = Field(
        True,
        description="Revise the draft with each step's answers (TTD-DR); off: the report is "
        "assembled from the answers, a search-and-summarise baseline.",
    )
    evolve: list[Literal["plan", "questions", "answer", "report"]] = Field(
        default_factory=lambda: ["plan", "report"],
        description="Components improved by self-evolution (variants, judge, revise, merge).",
    )
    variants: int = Field(2, ge=1, le=8, description="Self-evolution: initial variants.")
    evolution_rounds: int = Field(1, ge=0, le=4, description="Self-evolution: revise rounds.")
    length: Length = Field(
        "medium", description="Report size, independent of research depth (iterations)."
    )
    words: int | None = Field(
        None,
        ge=50,
        le=20000,
        description="Report size in words (about); overrides `length` when set.",
    )
    language: str | None = Field(
        None,
        pattern=r"^[a-z]{2}$",
        description="The run's language (ISO 639-1), which its plan, search queries and report "
        "are in; None: the question's, detected when the run starts (and stored so).",
    )
    grounding: Grounding = Field(
        "strict",
        description="strict: every report sentence is supported by a retrieved passage or "
        "removed; marked: unsupported sentences stay, flagged; off: no filtering.",
    )
    judge_model: str | None = Field(
        None,
        description="Registry name or checkpoint folder of the self-evolution and `eval "
        "--compare` judge; none: the research model judges its own drafts.",
    )
    review_plan: bool = Field(
        False,
        description="Stop after the plan until a person accepts, edits or rejects it.",
    )

    @field_validator("language", mode="before")
    @classmethod
    def _language_code(cls, value: object) -> object:
        code = normalise_language(value)
        return None if code == "auto" else code  # the setting's "auto": detect it

    def with_question_language(self, question: str) -> ResearchConfig:
        """This config with its language settled: the question's, detected, when unset."""
        if self.language:
            return self
        return self.model_copy(update={"language": detect_language(question).code})

    @property
    def evolving(self) -> list[str]:
        """The components that really self-evolve: one variant and no revise round is no
        evolution at all, whatever `evolve` lists."""
        return list(self.evolve) if self.variants > 1 or self.evolution_rounds > 0 else []


class PlanSection(BaseModel):
    title: str
    question: str = Field(description="The key question this section must answer.")


class Plan(BaseModel):
    sections: list[PlanSection]

    def titles(self) -> list[str]:
        return [s.title for s in self.sections]


class Source(BaseModel):
    """A document that was actually retrieved during the run; `number` is run-global."""

    number: int
    url: str
    title: str
    kind: Literal["web", "local"]
    excerpt: str = ""
    retrieved_at: datetime = Field(default_factory=utc_now)


class Citation(BaseModel):
    """One entry of a report's references list: the [n] marker and the source behind it."""

    number: int
    source_number: int
    title: str
    url: str


class QAPair(BaseModel):
    iteration: int
    section: str
    question: str
    answer: str
    source_numbers: list[int] = Field(default_factory=list)


class DraftVersion(BaseModel):
    iteration: int
    text: str
    changed_sections: list[str] = Field(default_factory=list)
    created_at: datetime = Field(default_factory=utc_now)


class Report(BaseModel):
    run_id: str
    question: str
    body: str = Field(description="Markdown with [n] citation markers, without the references.")
    references: list[Citation]
    created_at: datetime = Field(default_factory=utc_now)
    language: str = Field("en", description="The language of the report's fixed headings.")

    @property
    def markdown(self) -> str:
        heading, none_cited = references_heading(self.language)
        lines = [self.body.rstrip(), "", f"## {heading}", ""]
        lines += [f"[{c.number}] {c.title} — {c.url}" for c in self.references]
        if not self.references:
            lines.append(none_cited)
        return "\n".join(lines) + "\n"


class RunEvent(BaseModel):
    """A progress event; the CLI, the API and the UI all render this one type."""

    run_id: str
    stage: Stage
    kind: EventKind
    message: str
    iteration: int | None = None
    data: dict[str, Any] = Field(
        default_factory=dict,
        description="The payload as stored (ttdr/events.py); read it typed through `payload`.",
    )
    elapsed_s: float = 0.0
    created_at: datetime = Field(default_factory=utc_now)

    @property
    def payload(self) -> EventPayload | None:
        """What this stage reported besides its message, typed by stage and kind (e.g. a
        `SkippedSource` for a skipped page); None for an event without one."""
        return read_payload(self.stage, self.kind, self.data)


class RunSummary(BaseModel):
    id: str
    question: str
    status: RunStatus
    created_at: datetime
    finished_at: datetime | None = None
    error: str | None = None
    model: str
    drafts: int = 0
    sources: int = 0


class GenerationTotals(BaseModel):
    """What generating text cost, for one stage or a whole run."""

    tokens: int = 0
    prompt_tokens: int = 0
    forward_passes: int = 0
    seconds: float = 0.0
    calls: int = 0
    tokens_per_forward: float = 0.0
    tokens_per_second: float = 0.0


class StageTotals(GenerationTotals):
    wall_s: float = Field(0.0, description="Wall time spent in the stage, generation or not.")


class CitationCounts(BaseModel):
    """The citation ledger's counts for the final report, and how much of it is sourced."""

    markers: int = 0
    kept: int = 0
    moved: int = 0
    unsupported: int = 0
    validity_rate: float | None = None
    unresolved_removed: int = 0
    sections: int = 0
    sections_with_citations: int = 0
    sentences: int = 0
    sentences_cited: int = 0
    grounding: Grounding | None = None


class RunStats(BaseModel):
    """What a run spent and measured, kept with it (budgets, timings, prompts, citations).

    Every field has a default and unknown keys are ignored, because stats written by earlier
    versions (and by runs that failed before their report) must stay readable.
    """

    model: str | None = None
    decoding: str | None = None
    device: str | None = None
    judge_model: str | None = None
    generation: GenerationTotals | None = None
    stages: dict[str, StageTotals] = Field(default_factory=dict)
    wall_s: float = 0.0
    prompts: dict[str, int] = Field(
        default_factory=dict, description="The prompt version each evolving component used."
    )
    citations: CitationCounts | None = None
    judge_scores: dict[str, list[float]] = Field(default_factory=dict)

    @field_validator("citations", mode="before")
    @classmethod
    def _no_report_no_counts(cls, value: Any) -> Any:
        return value or None  # earlier versions stored {} for a run without a report


class RunDetail(RunSummary):
    config: ResearchConfig
    plan: Plan | None = None
    drafts_list: list[DraftVersion] = Field(default_factory=list)
    qa_pairs: list[QAPair] = Field(default_factory=list)
    sources_list: list[Source] = Field(default_factory=list)
    report: Report | None = None
    stats: RunStats = Field(default_factory=RunStats)
