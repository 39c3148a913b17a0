"""The graph's state: small, serialisable values only.

Page texts and model handles stay out of it (they live in the store and the run context), so
checkpoints stay small and a resumed run does not carry a model object around.
"""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from ttdr.models import Plan, QAPair


class SearchTask(TypedDict):
    section: int
    query: str


class ResearchState(TypedDict, total=False):
    question: str
    plan: Plan
    sections: list[str]  # the current draft, one body per plan section, in plan order
    iteration: int  # denoising steps completed
    task: SearchTask  # the search question of the step in progress
    last_answer: QAPair | None
    qa_pairs: Annotated[list[QAPair], operator.add]
    stop_reason: str


def render_draft(plan: Plan, sections: list[str]) -> str:
    """The draft as markdown: one `##` heading per plan section, in plan order."""
    parts = [
        f"## {s.title}\n\n{body.strip()}" for s, body in zip(plan.sections, sections, strict=True)
    ]
    return "\n\n".join(parts) + "\n"
