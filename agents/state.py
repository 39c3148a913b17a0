"""The graph's state: small, serialisable values only.

Page texts and model handles stay out of it (they live in the store and the run context), so
checkpoints stay small and a resumed run does not carry a model object around.
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from ttdr.models import Plan, QAPair


class SearchTask(TypedDict):
    """One search question of a denoising step, aimed at one section of the draft."""

    question: str  # the research question
    section: int
    section_title: str
    section_question: str
    query: str  # what the step is said to search for (the model's query, or the plan's)
    model_query: str | None  # the model's own query, one candidate among several
    form_query: str | None  # the model's query as an infilled, validated form (read with .get:
    # tasks checkpointed before it existed lack it)
    # The openings of the passages the checkpointed state has read, by source number. The
    # store's sources are not it: a node killed after saving its sources but before its
    # checkpoint reruns, and must not count what it found the first time as already read.
    read: dict[int, str]
    iteration: int


class Evidence(TypedDict):
    """A passage read for a section: the grounded writer builds the section from these."""

    section: int
    source: int  # the run-wide source number it is cited by
    text: str


class ResearchState(TypedDict, total=False):
    question: str
    plan: Plan
    sections: list[str]  # the current draft, one body per plan section, in plan order
    iteration: int  # denoising steps completed
    tasks: list[SearchTask]  # the search questions of the step in progress
    qa_pairs: Annotated[list[QAPair], operator.add]
    evidence: Annotated[list[Evidence], operator.add]
    source_count: int  # sources retrieved before the step in progress
    evidence_count: int  # evidence passages read before the step in progress
    stop_reason: str


def render_draft(plan: Plan, sections: list[str]) -> str:
    """The draft as markdown: one `##` heading per plan section, in plan order."""
    parts = [
        f"## {s.title}\n\n{body.strip()}" for s, body in zip(plan.sections, sections, strict=True)
    ]
    return "\n\n".join(parts) + "\n"


def section_spans(plan: Plan, sections: list[str]) -> list[tuple[int, int]]:
    """Character span of each section body inside `render_draft`'s text."""
    spans, cursor = [], 0
    for index, (section, body) in enumerate(zip(plan.sections, sections, strict=True)):
        cursor += len(f"## {section.title}\n\n")
        spans.append((cursor, cursor + len(body.strip())))
        cursor += len(body.strip()) + (2 if index < len(sections) - 1 else 1)
    return spans
