"""The denoising step: R(t-1) → R(t), revising only the section the new answer concerns.

Every other section keeps its exact text, and every source the answer cited stays cited in
the revised section, so evidence gathered in earlier steps is never silently lost.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from agents import prompts
from agents.attribution import attribute, support
from agents.citations import cited_numbers
from agents.context import ResearchContext
from agents.state import ResearchState, render_draft
from agents.text import clean_model_text
from ttdr.models import DraftVersion, EventKind, Stage

# The share of the evidence's content words a rewrite must keep to count as absorbing it.
MIN_EVIDENCE_COVERAGE = 0.3


def revise_node(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict:
    ctx = runtime.context
    plan, qa = state["plan"], state["last_answer"]
    iteration = state["iteration"] + 1
    sections = list(state["sections"])
    target = state["task"]["section"]
    title = plan.sections[target].title
    changed: list[str] = []

    with ctx.stage(
        Stage.revise, f"Revising section {title!r} with the new evidence", iteration=iteration
    ):
        if qa is not None and qa.answer:
            sources = {s.number: s.excerpt for s in ctx.store.sources(ctx.run_id)}
            sections[target] = revise_section(
                ctx, state["question"], title, sections[target], qa.answer, sources
            )
            changed = [title] if sections[target] != state["sections"][target] else []

    draft = DraftVersion(
        iteration=iteration, text=render_draft(plan, sections), changed_sections=changed
    )
    ctx.store.add_draft(ctx.run_id, draft)
    message = (
        f"Draft R{iteration}: revised {title!r}"
        if changed
        else f"Draft R{iteration}: no new evidence, unchanged"
    )
    ctx.emit(
        Stage.revise,
        EventKind.finished,
        message,
        iteration=iteration,
        draft_version=iteration,
        changed_sections=changed,
    )
    return {"sections": sections, "iteration": iteration}


def revise_section(
    ctx: ResearchContext,
    question: str,
    title: str,
    current: str,
    evidence: str,
    sources: dict[int, str],
) -> str:
    prompt = prompts.REVISE_SECTION.format(
        question=question, title=title, section_text=current, evidence=evidence
    )
    budget = ctx.config.section_tokens + 64  # room for the evidence the section absorbs
    written = clean_model_text(
        ctx.write(Stage.revise, prompts.chat(prompt), budget),
        heading=title,
        instruction=prompts.REVISE_SECTION,
    )
    revised = attribute(written, sources, keep_unsupported=True)
    must_keep = set(cited_numbers(current)) | set(cited_numbers(evidence))
    if (
        not must_keep <= set(revised.cited)
        or support(evidence, revised.text) < MIN_EVIDENCE_COVERAGE
    ):
        # A rewrite that lost a source or the new evidence (or is empty, or echoes the
        # instruction) would undo the step: keep the section and add the evidence as is.
        return f"{current.rstrip()}\n\n{evidence}".strip()
    return revised.text
