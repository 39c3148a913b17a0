"""Stage 3: the final report, its numbered citations checked against what was retrieved.

Citations in the draft use run-wide source numbers; the report renumbers them 1..n in order
of first appearance. A marker that does not resolve to a stored source is removed and
reported, and a section no source supports says so instead of passing as researched.
"""

from __future__ import annotations

from dataclasses import dataclass

from langgraph.runtime import Runtime

from agents import prompts
from agents.attribution import CitationLedger, attribute
from agents.citations import cited_numbers, remap_citations
from agents.context import ResearchContext
from agents.evolve import evolve
from agents.grounded import (
    LENGTH_SENTENCES,
    SUMMARY_SENTENCES,
    as_prose,
    choose_sentences,
    evidence_sentences,
    grounded_section,
    informative,
    on_topic,
)
from agents.language import phrases, settle_language
from agents.state import ResearchState
from agents.text import clean_model_text, split_sentences
from ttdr.events import ReportWritten
from ttdr.models import Citation, EventKind, Plan, Report, ResearchConfig, Source, Stage

# The English phrases; each language's are in agents/language.py.
UNSUPPORTED_NOTE = phrases("en").unsupported
READING_NOTE = phrases("en").reading_note
# Words in a typical evidence sentence (the fixture corpus' mean is 16 to 24): how `words`
# becomes a sentence budget, since the report is assembled from whole grounded sentences.
SENTENCE_WORDS = 20
SUMMARY_SHARE = 0.1  # of the sentences, as `length`'s budgets give it (3 of 35 for medium)
MAX_SUMMARY_SENTENCES = 6


@dataclass(frozen=True)
class ReportBudget:
    """How many sentences each section and the summary may have."""

    section_sentences: int
    summary_sentences: int


def report_budget(config: ResearchConfig, sections: int) -> ReportBudget:
    """`length`'s budget, or the one `words` asks for, which overrides it: about `words`
    words over the summary and `sections` sections."""
    if config.words is None:
        return ReportBudget(LENGTH_SENTENCES[config.length], SUMMARY_SENTENCES[config.length])
    total = max(sections + 1, round(config.words / SENTENCE_WORDS))
    summary = min(MAX_SUMMARY_SENTENCES, max(1, round(total * SUMMARY_SHARE)))
    return ReportBudget(max(1, (total - summary) // max(1, sections)), summary)


def report_node(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict:
    ctx = runtime.context
    plan = state["plan"]
    sections = state["sections"] if ctx.config.denoise else summarise_answers(state)
    question = state["question"]
    language = settle_language(ctx, question)
    say = phrases(language)
    config = ctx.config
    budget = report_budget(config, len(plan.sections))
    with ctx.stage(Stage.report, "Writing the final report"):
        sources = ctx.store.sources(ctx.run_id)
        excerpts = {s.number: s.excerpt for s in sources}
        ledger = CitationLedger(excerpts)
        evidence = evidence_by_section(state, len(plan.sections))
        used: set[str] = set()
        grounded = grounded_sections(question, plan, sections, evidence, excerpts, config, used)
        checked = [ledger.check(body) for body in grounded]
        digest = "\n".join(
            f"- {s.title}: {body.strip()[:300]}"
            for s, body in zip(plan.sections, checked, strict=True)
        )
        template = ctx.prompt("report")
        prompt = template.format(question=question, digest=digest)

        def write(temperature: float, seed: int) -> str:
            text = ctx.write(Stage.report, prompts.chat(prompt), temperature=temperature, seed=seed)
            return clean_model_text(text, heading=say.summary, instruction=template)

        written = evolve(ctx, "report", question, write, signal=supported_share(excerpts)).text
        summary = ledger.check(
            ground_summary(written, excerpts, evidence, question, config, used, budget)
        )
        cited, total = sourced_sentences([summary, *checked])
        parts = [f"# {question}"]
        if cited < total:  # say plainly how much of the report stands on its sources
            parts.append(say.reading_note.format(cited=cited, total=total))
        parts += [f"## {say.summary}", summary or say.no_summary]
        for section, body in zip(plan.sections, checked, strict=True):
            parts += [f"## {section.title}", body.strip()]
            if not cited_numbers(body):
                parts.append(say.unsupported)
        body = "\n\n".join(parts) + "\n"
        report, dropped = build_report(ctx.run_id, question, body, sources, language)
    ctx.store.save_report(report)
    covered = sum(1 for body in checked if cited_numbers(body))
    ctx.citation_stats = {
        **ledger.counts(),
        "unresolved_removed": len(dropped),
        "sections": len(plan.sections),
        "sections_with_citations": covered,
        "sentences": total,
        "sentences_cited": cited,
        "grounding": config.grounding,
    }
    if ledger.moved or ledger.unsupported or dropped:
        ctx.emit(
            Stage.report,
            EventKind.warning,
            f"Citation check: {ledger.moved} attached or moved to the source that supports the "
            f"sentence, "
            f"{ledger.unsupported} removed as unsupported, {len(dropped)} removed as unresolved",
        )
    reason = state.get("stop_reason") or "iteration limit reached"
    ctx.emit(
        Stage.report,
        EventKind.finished,
        f"Report written with {len(report.references)} references (loop ended: {reason})",
        payload=ReportWritten(references=len(report.references), stop_reason=reason),
    )
    return {"stop_reason": reason}


def grounded_sections(
    question: str,
    plan: Plan,
    sections: list[str],
    evidence: list[list[tuple[int, str]]],
    excerpts: dict[int, str],
    config: ResearchConfig,
    used: set[str],
) -> list[str]:
    """Every section's grounded text, in plan order; `used` collects what they quote."""
    budget = report_budget(config, len(plan.sections))
    return [
        grounded_section(
            body,
            evidence[index],
            excerpts,
            [(question, 1.0), (f"{section.title} {section.question}", 0.7)],
            sentences=budget.section_sentences,
            grounding=config.grounding,
            used=used,
        )
        for index, (section, body) in enumerate(zip(plan.sections, sections, strict=True))
    ]


def evidence_by_section(state: ResearchState, count: int) -> list[list[tuple[int, str]]]:
    """(source number, passage) for each section: the passages read for it first, then every
    other passage of the run, so a section the loop never reached still stands on evidence."""
    own: list[list[tuple[int, str]]] = [[] for _ in range(count)]
    for item in state.get("evidence", []):
        if 0 <= item["section"] < count:
            own[item["section"]].append((item["source"], item["text"]))
    pool = list(dict.fromkeys(pair for section in own for pair in section))
    return [section + [p for p in pool if p not in section] for section in own]


def ground_summary(
    written: str,
    excerpts: dict[int, str],
    evidence: list[list[tuple[int, str]]],
    question: str,
    config: ResearchConfig,
    used: set[str],
    budget: ReportBudget | None = None,
) -> str:
    """The model's summary sentences that a source supports; when strict grounding leaves
    too few, the evidence sentences that best answer the question itself."""
    if config.grounding != "strict":
        return written
    room = (budget or report_budget(config, len(evidence))).summary_sentences
    kept = attribute(written, excerpts, keep_unsupported=False).text
    kept = informative(kept, question, excerpts)
    everything = list(dict.fromkeys(item for section in evidence for item in section))
    candidates = [c for c in evidence_sentences(everything) if c.text not in used]
    kept = on_topic(kept, candidates, question, room)
    wanted = room - len(split_sentences(kept))
    if wanted <= 0:
        return kept
    chosen = choose_sentences(
        candidates, [(question, 1.0)], wanted, already=[*split_sentences(kept), *used]
    )
    return " ".join(p for p in (kept, as_prose(chosen).replace("\n\n", " ")) if p)


def supported_share(excerpts: dict[int, str]):
    """A measurable signal for ranking summaries when the judge cannot tell them apart."""

    def signal(text: str) -> float:
        result = attribute(text, excerpts, keep_unsupported=False)
        total = len(split_sentences(text))
        return len(split_sentences(result.text)) / total if total else 0.0

    return signal


def sourced_sentences(bodies: list[str]) -> tuple[int, int]:
    """How many sentences of these report parts carry a citation, out of how many.
    Placeholders such as "(Nothing is known yet about …)" claim nothing and are not counted."""
    sentences = [
        s
        for body in bodies
        for s in split_sentences(body)
        if s.strip() and not (s.startswith("(") and s.rstrip(".").endswith(")"))
    ]
    return sum(1 for s in sentences if cited_numbers(s)), len(sentences)


def summarise_answers(state: ResearchState) -> list[str]:
    """Without denoising (the search-and-summarise baseline): each section is its answers,
    or the first draft's text when it got none."""
    bodies = []
    for section, draft in zip(state["plan"].sections, state["sections"], strict=True):
        answers = [qa.answer for qa in state.get("qa_pairs", []) if qa.section == section.title]
        bodies.append(" ".join(a for a in answers if a) or draft)
    return bodies


def build_report(
    run_id: str, question: str, body: str, sources: list[Source], language: str = "en"
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
    report = Report(
        run_id=run_id, question=question, body=body, references=references, language=language
    )
    return report, dropped
