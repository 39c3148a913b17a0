"""The typed payloads of run events: what a stage reports besides its message.

A `RunEvent` keeps its payload as the plain dict it is stored as (`RunEvent.data`), so every
row ever written stays readable; readers take it typed through `RunEvent.payload`, and writers
go through `payload_data`, which validates the fields against the payload type of that stage
and kind. Each (stage, kind) has at most one payload type, so a reader never guesses by keys.

Plain models with no dependency on the rest of ttdr: the store, the agent, retrieval
(`SkippedSource` is what the fetcher and the local index hand back) and the front ends share
them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError
from pydantic.dataclasses import dataclass

SkipCategory = Literal[
    "robots",  # disallowed by robots.txt (or robots.txt unavailable)
    "address",  # refused address: private, loopback, link-local, multicast, reserved
    "timeout",
    "too_large",
    "not_text",  # binary, empty, unsupported content type, unreadable document
    "http",  # an HTTP error status
    "network",  # connection failed, too many redirects
    "",  # not classified (e.g. a local file that could not be read)
]


@dataclass(frozen=True)
class SkippedSource:
    """A source that gave no text; `reason` is short and user-facing.

    A dataclass (built positionally by the fetcher and the index) that pydantic validates.
    `category` is one of `SkipCategory` when written, but any text is read back: a row from
    another version must not vanish from the list of skipped pages.
    """

    url: str
    reason: str
    category: str = ""


class _Payload(BaseModel):
    # Fields added later have defaults, and keys an older version wrote are ignored.
    model_config = ConfigDict(extra="ignore", frozen=True)


class RunStarted(_Payload):
    question: str


class RunFinished(_Payload):
    run_id: str


class PlanWritten(_Payload):
    sections: list[str]


class PlannedSection(_Payload):
    title: str
    question: str


class PlanReady(_Payload):
    """The plan a run waits with for review: each section's title and key question, enough
    for a front end to show it as an editable form without reading the run."""

    sections: list[PlannedSection]


class PlanFallback(_Payload):
    """The model's plan could not be read; `raw` is the start of what it wrote."""

    raw: str


class DraftWritten(_Payload):
    """A draft version: R0 (`draft`) or a denoising step's R(t) (`revise`)."""

    draft_version: int
    changed_sections: list[str] = []
    new_sources: int | None = None
    new_passages: int | None = None


class SearchQuestion(_Payload):
    section: str
    query: str


class QueryFeedback(_Payload):
    """One query a search step ran: where it came from and how well its results fit."""

    origin: str
    query: str
    feedback: float


class SearchDone(_Payload):
    backend: str
    urls: list[str] = []
    queries: list[QueryFeedback] = []


class AnswerWritten(_Payload):
    answer: str


class Judged(_Payload):
    """Self-evolution of one component: the variants' scores and the judge's critiques."""

    component: str
    scores: list[float] = []
    critiques: list[str] = []


class JudgeFallback(_Payload):
    """The judge could not tell the variants apart; `signal` ranked them instead, if any."""

    component: str
    signal: list[float] = []


class ReportWritten(_Payload):
    references: int
    stop_reason: str


EventPayload = (
    RunStarted
    | RunFinished
    | PlanWritten
    | PlanReady
    | PlanFallback
    | DraftWritten
    | SearchQuestion
    | SkippedSource
    | SearchDone
    | AnswerWritten
    | Judged
    | JudgeFallback
    | ReportWritten
)

# (stage, kind) → its payload type. The keys are the values of `Stage` and `EventKind`
# (ttdr/models.py), which are `str` enums, so either spelling looks a type up.
PAYLOADS: dict[tuple[str, str], type] = {
    ("run", "started"): RunStarted,
    ("run", "finished"): RunFinished,
    ("plan", "finished"): PlanWritten,
    ("plan", "warning"): PlanFallback,
    ("plan", "review"): PlanReady,
    ("draft", "finished"): DraftWritten,
    ("revise", "finished"): DraftWritten,
    ("question", "finished"): SearchQuestion,
    ("search", "warning"): SkippedSource,
    ("search", "finished"): SearchDone,
    ("answer", "finished"): AnswerWritten,
    ("judge", "finished"): Judged,
    ("judge", "warning"): JudgeFallback,
    ("report", "finished"): ReportWritten,
}
_ADAPTERS = {key: TypeAdapter(kind) for key, kind in PAYLOADS.items()}


def read_payload(stage: str, kind: str, data: dict[str, Any]) -> EventPayload | None:
    """The typed payload of a stored event, or None when it has none: an event without data
    (a search warning that is not a skipped page), or one an older version wrote otherwise."""
    adapter = _ADAPTERS.get((stage, kind))
    if adapter is None or not data:
        return None
    try:
        return adapter.validate_python(data)
    except ValidationError:
        return None


def payload_data(
    stage: str, kind: str, payload: EventPayload | None = None, **fields: Any
) -> dict[str, Any]:
    """The dict an event stores: `payload`, or `fields` validated as the payload type of this
    stage and kind. A payload of the wrong type, an unknown field or a wrong value raises, so
    a writer that drifts from the readers fails in the tests, not silently in the app."""
    if payload is None and not fields:
        return {}
    expected = PAYLOADS.get((stage, kind))
    if expected is None:
        raise TypeError(f"{stage} {kind} events carry no payload")
    if payload is None:
        known = set(expected.__pydantic_fields__)
        if unknown := set(fields) - known:
            raise TypeError(f"{expected.__name__} has no field {', '.join(sorted(unknown))}")
        payload = _ADAPTERS[(stage, kind)].validate_python(fields)
    elif fields or not isinstance(payload, expected):
        raise TypeError(f"{stage} {kind} events carry one {expected.__name__}")
    return _ADAPTERS[(stage, kind)].dump_python(payload, mode="json", exclude_unset=True)
