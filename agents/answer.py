"""Stage 2b: search, then answer the search question from the passages found, with citations.

Passages are numbered 1..k in the prompt because small models cite short local numbers
reliably; the answer's markers are then mapped to the run-wide source numbers.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from agents import prompts
from agents.citations import append_markers, cited_numbers, remap_citations
from agents.context import ResearchContext
from agents.state import ResearchState
from agents.text import clean_model_text, clip_to_sentence
from backends.search.types import Passage
from ttdr.errors import RetrievalUnavailableError
from ttdr.models import EventKind, QAPair, Stage

PASSAGE_CHARS = 700


def answer_node(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict:
    ctx = runtime.context
    task = state["task"]
    iteration = state["iteration"] + 1
    section = state["plan"].sections[task["section"]].title
    passages = search(ctx, task["query"], iteration)

    with ctx.stage(Stage.answer, "Answering from the retrieved passages", iteration=iteration):
        if not passages:
            qa = QAPair(iteration=iteration, section=section, question=task["query"], answer="")
            ctx.store.add_qa(ctx.run_id, qa)
            ctx.emit(
                Stage.answer,
                EventKind.warning,
                "No passages found: nothing to answer from.",
                iteration=iteration,
            )
            return {"qa_pairs": [qa], "last_answer": qa}
        numbers = [register_source(ctx, p) for p in passages]
        listing = "\n\n".join(
            f"[{i}] {p.title}\n{p.text[:PASSAGE_CHARS]}" for i, p in enumerate(passages, start=1)
        )
        prompt = prompts.ANSWER.format(passages=listing, query=task["query"])
        raw = clean_model_text(ctx.write(Stage.answer, prompts.chat(prompt)))
        answer, dropped = remap_citations(
            raw, lambda i: numbers[i - 1] if 1 <= i <= len(numbers) else None
        )
        if not cited_numbers(answer):
            # The answer was written from these passages; when the model names none of them,
            # attribute it to the two it was shown first (the best-ranked) rather than to none.
            answer = append_markers(
                answer or clip_to_sentence(passages[0].text, 400), dict.fromkeys(numbers[:2])
            )
    qa = QAPair(
        iteration=iteration,
        section=section,
        question=task["query"],
        answer=answer,
        source_numbers=cited_numbers(answer),
    )
    ctx.store.add_qa(ctx.run_id, qa)
    message = f"Answered with sources {', '.join(f'[{n}]' for n in qa.source_numbers)}"
    if dropped:
        message += f"; removed citations to nonexistent passages {sorted(set(dropped))}"
    ctx.emit(Stage.answer, EventKind.finished, message, iteration=iteration, answer=answer)
    return {"qa_pairs": [qa], "last_answer": qa}


def search(ctx: ResearchContext, query: str, iteration: int) -> list[Passage]:
    with ctx.stage(Stage.search, f"Searching: {query}", iteration=iteration):
        try:
            outcome = ctx.retriever.search(query, ctx.config.search_results)
        except RetrievalUnavailableError as exc:
            ctx.emit(
                Stage.search,
                EventKind.warning,
                f"Search failed, continuing without new evidence: {exc}",
                iteration=iteration,
            )
            return []
    for warning in outcome.warnings:
        ctx.emit(Stage.search, EventKind.warning, warning, iteration=iteration)
    for skipped in outcome.skipped:
        ctx.emit(
            Stage.search,
            EventKind.warning,
            f"Skipped {skipped.url}: {skipped.reason}",
            iteration=iteration,
            url=skipped.url,
            reason=skipped.reason,
        )
    passages = outcome.passages[: ctx.config.passages_per_answer]
    ctx.emit(
        Stage.search,
        EventKind.finished,
        f"Found {len(passages)} passages ({outcome.backend})",
        iteration=iteration,
        backend=outcome.backend,
        urls=[p.url for p in passages],
    )
    return passages


def register_source(ctx: ResearchContext, passage: Passage) -> int:
    source = ctx.store.add_source(
        ctx.run_id,
        url=passage.url,
        title=passage.title,
        kind=passage.kind,
        excerpt=passage.text[:1000],
    )
    return source.number
