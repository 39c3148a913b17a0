"""The revision stage (`Stage.revise`), TTD-DR's denoising step R(t-1) → R(t): the sections
this step's answers touch are rewritten in place with the evidence; every other section keeps
its exact text. (The token-level denoising loop is the engine's, backends/llm/denoise.py.)

When the generator is an `Editor` (the dLLM engine) the rewrite is an edit of the draft itself
(`rewrite` over the section's span: in place for bidirectional models, suffix-in-prompt for
block-causal ones); a generator that only chats gets a revise prompt instead.
Every source the section or the evidence cited must still be cited afterwards, and the new
evidence must still be there (the citation ledger checks each sentence); a rewrite that loses
either is discarded and the evidence is appended as answered, so a step never loses evidence.
"""

from __future__ import annotations

from collections import defaultdict

from langgraph.runtime import Runtime

from agents import prompts
from agents.attribution import attribute, support
from agents.citations import cited_numbers
from agents.context import ResearchContext
from agents.grounded import fact_bearing_sentences
from agents.state import ResearchState, render_draft, section_spans
from agents.text import clean_model_text
from backends.llm.protocol import Editor, Span
from ttdr.events import DraftWritten
from ttdr.models import DraftVersion, EventKind, Plan, QAPair, Stage

# The share of the evidence's content words a rewrite must keep to count as absorbing it.
MIN_EVIDENCE_COVERAGE = 0.3
FACT_KEPT = 0.8  # ... and of each fact-bearing evidence sentence's


def revise_node(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict:
    ctx = runtime.context
    plan = state["plan"]
    iteration = state["iteration"] + 1
    sections = list(state["sections"])
    step_answers = [qa for qa in state.get("qa_pairs", []) if qa.iteration == iteration]
    touched = answers_by_section(plan, step_answers)
    changed: list[str] = []

    with ctx.stage(Stage.revise, f"Denoising draft R{iteration - 1}", iteration=iteration):
        if ctx.config.denoise and touched:
            sources = {s.number: s.excerpt for s in ctx.store.sources(ctx.run_id)}
            for index, evidence in touched.items():
                revised = revise_section(
                    ctx, state["question"], plan, sections, index, evidence, sources
                )
                if revised != sections[index]:
                    sections[index] = revised
                    changed.append(plan.sections[index].title)

    draft = DraftVersion(
        iteration=iteration, text=render_draft(plan, sections), changed_sections=changed
    )
    ctx.store.add_draft(ctx.run_id, draft)
    source_count = len(ctx.store.sources(ctx.run_id))
    new_sources = source_count - state.get("source_count", 0)
    # New passages of pages already read count too: a manual's page holds many facts.
    evidence_count = len(state.get("evidence", []))
    new_passages = evidence_count - state.get("evidence_count", 0)
    what = f"revised {', '.join(repr(t) for t in changed)}" if changed else "unchanged"
    ctx.emit(
        Stage.revise,
        EventKind.finished,
        f"Draft R{iteration}: {what}; {new_passages} new passage(s) from {new_sources} new "
        "source(s)",
        iteration=iteration,
        payload=DraftWritten(
            draft_version=iteration,
            changed_sections=changed,
            new_sources=new_sources,
            new_passages=new_passages,
        ),
    )
    update = {
        "sections": sections,
        "iteration": iteration,
        "source_count": source_count,
        "evidence_count": evidence_count,
    }
    if new_passages == 0:
        update["stop_reason"] = f"step {iteration} brought no new evidence"
    return update


def answers_by_section(plan: Plan, answers: list[QAPair]) -> dict[int, str]:
    """The evidence per section index, from the answers that have any."""
    titles = {s.title: i for i, s in enumerate(plan.sections)}
    grouped: dict[int, list[str]] = defaultdict(list)
    for qa in answers:
        if qa.answer and qa.section in titles:
            grouped[titles[qa.section]].append(qa.answer)
    return {index: " ".join(texts) for index, texts in sorted(grouped.items())}


def revise_section(
    ctx: ResearchContext,
    question: str,
    plan: Plan,
    sections: list[str],
    index: int,
    evidence: str,
    sources: dict[int, str],
) -> str:
    current = sections[index]
    written = rewrite_span(ctx, question, plan, sections, index, evidence)
    revised = attribute(written, sources, keep_unsupported=True)
    must_keep = set(cited_numbers(current)) | set(cited_numbers(evidence))
    kept_evidence = support(evidence, revised.text) >= MIN_EVIDENCE_COVERAGE
    if (
        not must_keep <= set(revised.cited)
        or not kept_evidence
        or lost_facts(evidence, revised.text)
    ):
        return f"{current.rstrip()}\n\n{evidence}".strip()
    return revised.text


def lost_facts(evidence: str, revised: str) -> list[str]:
    """The fact-bearing evidence sentences (numbers, names, defaults, qualifiers) that the
    revision no longer states: a rewrite that drops one is rejected."""
    return [
        sentence
        for sentence in fact_bearing_sentences(evidence)
        if support(sentence, revised) < FACT_KEPT
    ]


def rewrite_span(
    ctx: ResearchContext, question: str, plan: Plan, sections: list[str], index: int, evidence: str
) -> str:
    """The section's new text from the engine's in-place rewrite, or a chat prompt for
    generators that cannot edit a document."""
    title = plan.sections[index].title
    generator = ctx.generator
    if not isinstance(generator, Editor):
        prompt = prompts.REVISE_SECTION.format(
            question=question, title=title, section_text=sections[index], evidence=evidence
        )
        text = ctx.write(Stage.revise, prompts.chat(prompt), ctx.config.section_tokens + 64)
        return clean_model_text(text, heading=title, instruction=prompts.REVISE_SECTION)
    draft = render_draft(plan, sections)
    start, end = section_spans(plan, sections)[index]
    instruction = prompts.REVISE_INSTRUCTION.format(
        question=question, title=title, evidence=evidence
    )
    # The rewritten section gets the usual per-write budget; extra slots end as end tokens.
    span = Span(start, end, length=ctx.config.section_tokens)
    edit = generator.rewrite(draft, span, instruction, stop=ctx.stop)
    ctx.account(Stage.revise, edit.stats)
    return clean_model_text(
        edit.replacements[0], heading=title, instruction=prompts.REVISE_INSTRUCTION
    )
