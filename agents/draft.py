"""Stage R0: the first, noisy draft, written from the model's own knowledge.

TTD-DR starts from a complete draft rather than an empty page: it shows which parts are thin,
which steers the search questions, and each later step revises it in place.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from agents import prompts
from agents.context import ResearchContext
from agents.state import ResearchState, render_draft
from agents.text import clean_model_text
from ttdr.events import DraftWritten
from ttdr.models import DraftVersion, EventKind, Stage


def draft_node(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict:
    ctx = runtime.context
    plan = state["plan"]
    sections: list[str] = []
    with ctx.stage(Stage.draft, "Writing the first draft from the model's own knowledge"):
        for section in plan.sections:
            prompt = prompts.DRAFT_SECTION.format(
                question=state["question"], title=section.title, section_question=section.question
            )
            text = clean_model_text(
                ctx.write(Stage.draft, prompts.chat(prompt)), heading=section.title
            )
            sections.append(text or f"(Nothing is known yet about {section.title.lower()}.)")
            ctx.emit(
                Stage.draft,
                EventKind.progress,
                f"Drafted section {len(sections)}/{len(plan.sections)}: {section.title}",
            )
    draft = DraftVersion(
        iteration=0, text=render_draft(plan, sections), changed_sections=plan.titles()
    )
    ctx.store.add_draft(ctx.run_id, draft)
    ctx.emit(
        Stage.draft,
        EventKind.finished,
        "Draft R0 written",
        iteration=0,
        payload=DraftWritten(draft_version=0),
    )
    return {
        "sections": sections,
        "iteration": 0,
        "source_count": len(ctx.store.sources(ctx.run_id)),  # the plan's outline may have read
        "evidence_count": len(state.get("evidence", [])),
    }
