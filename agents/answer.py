"""Stage 2b: search, then answer the search question from the passages found.

The answer must come from the sources: each sentence is attributed to the passage that
supports it (agents/attribution.py) and sentences none supports are dropped. When nothing
the model wrote is supported, the answer quotes the passages' most relevant sentences instead,
so a denoising step never feeds unsupported text into the draft as evidence.
"""

from __future__ import annotations

from langgraph.runtime import Runtime

from agents import prompts
from agents.attribution import attribute, extractive_answer
from agents.context import ResearchContext
from agents.evolve import evolve
from agents.state import SearchTask
from agents.text import clean_model_text
from backends.search.types import Passage
from ttdr.errors import RetrievalUnavailableError
from ttdr.models import EventKind, QAPair, Stage

PASSAGE_CHARS = 700


def answer_node(task: SearchTask, runtime: Runtime[ResearchContext]) -> dict:
    """One parallel branch: `task` is this branch's own input (a LangGraph `Send`)."""
    ctx = runtime.context
    iteration, section, query = task["iteration"], task["section_title"], task["query"]
    passages = search(ctx, query, iteration)

    with ctx.stage(Stage.answer, f"Answering: {query}", iteration=iteration):
        if not passages:
            qa = QAPair(iteration=iteration, section=section, question=query, answer="")
            ctx.store.add_qa(ctx.run_id, qa)
            ctx.emit(
                Stage.answer,
                EventKind.warning,
                "No passages found: nothing to answer from.",
                iteration=iteration,
            )
            return {"qa_pairs": [qa]}
        shown = [p.text[:PASSAGE_CHARS] for p in passages]
        sources: dict[int, str] = {}
        for passage, text in zip(passages, shown, strict=True):
            number = register_source(ctx, passage, text)
            sources[number] = f"{sources.get(number, '')}\n{text}".strip()
        listing = "\n\n".join(f"Source {i}: {text}" for i, text in enumerate(shown, start=1))
        template = ctx.prompt("answer")
        prompt = template.format(passages=listing, query=query)

        def write(temperature: float, seed: int) -> str:
            text = ctx.write(Stage.answer, prompts.chat(prompt), temperature=temperature, seed=seed)
            return clean_model_text(text, instruction=template)

        written = evolve(ctx, "answer", task["question"], write, iteration=iteration).text
        answer = attribute(written, sources, keep_unsupported=False)
        quoted = not answer.cited
        if quoted:
            answer = extractive_answer(query, sources)

    qa = QAPair(
        iteration=iteration,
        section=section,
        question=query,
        answer=answer.text,
        source_numbers=answer.cited,
    )
    ctx.store.add_qa(ctx.run_id, qa)
    cited = ", ".join(f"[{n}]" for n in qa.source_numbers)
    how = "quoting the sources (no generated sentence was supported)" if quoted else "answered"
    ctx.emit(
        Stage.answer,
        EventKind.finished,
        f"{how.capitalize()}; cites {cited}",
        iteration=iteration,
        answer=qa.answer,
    )
    return {"qa_pairs": [qa]}


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
            category=skipped.category,
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


def register_source(ctx: ResearchContext, passage: Passage, shown: str) -> int:
    source = ctx.store.add_source(
        ctx.run_id, url=passage.url, title=passage.title, kind=passage.kind, excerpt=shown
    )
    return source.number
