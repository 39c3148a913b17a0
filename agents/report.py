"""Stage 3: the final report, its numbered citations checked against what was retrieved.

Citations in the draft use run-wide source numbers; the report renumbers them 1..n in order
of first appearance. A marker that does not resolve to a stored source is removed and
reported, and a section no source supports says so instead of passing as researched.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from agents import prompts
from agents.attribution import attribute
from agents.citations import cited_numbers, remap_citations
from agents.context import ResearchContext
from agents.state import ResearchState
from agents.text import clean_model_text
from ttdr.models import Citation, EventKind, Report, Source, Stage

UNSUPPORTED_NOTE = (
    "*No retrieved source supports this section yet; it reflects the model's own knowledge.*"
)


def report_node(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict:
    ctx = runtime.context
    plan, sections = state["plan"], state["sections"]
    with ctx.stage(Stage.report, "Writing the final report"):
        digest = "\n".join(
            f"- {s.title}: {body.strip()[:300]}"
            for s, body in zip(plan.sections, sections, strict=True)
        )
        prompt = prompts.SUMMARY.format(question=state["question"], digest=digest)
        written = clean_model_text(
            ctx.write(Stage.report, prompts.chat(prompt)),
            heading="Summary",
            instruction=prompts.SUMMARY,
        )
        sources = ctx.store.sources(ctx.run_id)
        excerpts = {s.number: s.excerpt for s in sources}
        summary = attribute(written, excerpts, keep_unsupported=True).text
        parts = [f"# {state['question']}", "## Summary", summary or "(No summary was generated.)"]
        for section, body in zip(plan.sections, sections, strict=True):
            parts += [f"## {section.title}", body.strip()]
            if not cited_numbers(body):
                parts.append(UNSUPPORTED_NOTE)
        report, dropped = build_report(
            ctx.run_id, state["question"], "\n\n".join(parts) + "\n", sources
        )
    ctx.store.save_report(report)
    if dropped:
        ctx.emit(
            Stage.report,
            EventKind.warning,
            f"Removed citations that match no retrieved source: {sorted(set(dropped))}",
        )
    ctx.emit(
        Stage.report,
        EventKind.finished,
        f"Report written with {len(report.references)} references",
        references=len(report.references),
    )
    return {"stop_reason": state.get("stop_reason") or "iteration limit reached"}


def build_report(
    run_id: str, question: str, body: str, sources: list[Source]
) -> tuple[Report, list[int]]:
    """Renumber citations by first appearance and list exactly the sources cited."""
    by_number = {s.number: s for s in sources}
    order: dict[int, int] = {}

    def renumber(number: int) -> int | None:
        if number not in by_number:
            return None
        return order.setdefault(number, len(order) + 1)

    body, dropped = remap_citations(body, renumber)
    references = [
        Citation(number=new, source_number=old, title=by_number[old].title, url=by_number[old].url)
        for old, new in order.items()
    ]
    return Report(run_id=run_id, question=question, body=body, references=references), dropped
