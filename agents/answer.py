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
from agents.evidence import candidate_queries, evidence_budget, keep_evidence, search_step
from agents.evolve import evolve
from agents.state import SearchTask
from agents.text import clean_model_text
from backends.search.types import Passage, SearchOutcome
from ttdr.errors import RetrievalUnavailableError
from ttdr.events import AnswerWritten, QueryFeedback, SearchDone
from ttdr.models import EventKind, QAPair, Stage

PASSAGE_CHARS = 700  # per passage in the answer prompt: a small model reads a few, briefly
PROMPT_PASSAGES = 4


def answer_node(task: SearchTask, runtime: Runtime[ResearchContext]) -> dict:
    """One parallel branch: `task` is this branch's own input (a LangGraph `Send`)."""
    ctx = runtime.context
    iteration, section, query = task["iteration"], task["section_title"], task["query"]
    passages = search(ctx, task)

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
        evidence = keep_evidence(ctx, task["section"], passages)
        sources: dict[int, str] = {}
        for item in evidence:
            sources[item["source"]] = f"{sources.get(item['source'], '')}\n{item['text']}".strip()
        shown = [p.text[:PASSAGE_CHARS] for p in passages[:PROMPT_PASSAGES]]
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
            focus = f"{task['question']} {section} {query}"
            answer = extractive_answer(focus, sources, sentences=3)

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
        payload=AnswerWritten(answer=qa.answer),
    )
    return {"qa_pairs": [qa], "evidence": evidence}


def read_excerpts(ctx: ResearchContext, task: SearchTask) -> dict[str, str]:
    """url → what of it was read: the checkpointed state's evidence, which the task carries
    (tasks checkpointed by an older version fall back to the store's excerpts)."""
    sources = ctx.store.sources(ctx.run_id)
    if "read" not in task:
        return {s.url: s.excerpt for s in sources}
    urls = {s.number: s.url for s in sources}
    # int(): a serializer may give the numbers back as strings.
    read = {int(number): text for number, text in task["read"].items()}
    return {urls[n]: text for n, text in read.items() if n in urls}


def search(ctx: ResearchContext, task: SearchTask) -> list[Passage]:
    """Gather the task's evidence from question-anchored queries beside the model's."""
    iteration = task["iteration"]
    with ctx.stage(Stage.search, f"Searching: {task['query']}", iteration=iteration):
        # url → one line per passage read (tasks of older checkpoints: the excerpt, roughly)
        excerpts = read_excerpts(ctx, task)
        candidates = candidate_queries(
            task["question"],
            task["section_title"],
            task.get("section_question", ""),
            task.get("model_query"),
            task.get("form_query"),
        )
        wanted = [task["question"], task["section_title"]]
        budget = evidence_budget(task["question"], ctx.config.passages_per_answer)

        def reported(outcome: SearchOutcome) -> SearchOutcome:
            for skipped in outcome.skipped:
                ctx.emit(
                    Stage.search,
                    EventKind.warning,
                    f"Skipped {skipped.url}: {skipped.reason}",
                    iteration=iteration,
                    payload=skipped,
                )
            return outcome

        def one_search(query: str, k: int, per_document: int) -> SearchOutcome:
            return reported(ctx.retriever.search(query, k, per_document=per_document))

        def page_search(query: str, url: str, k: int) -> SearchOutcome:
            return reported(ctx.retriever.page_passages(query, url, k))

        try:
            step = search_step(
                one_search,
                page_search,
                task["question"],
                candidates,
                wanted,
                excerpts,
                budget,
                depth=ctx.config.search_results,
            )
        except RetrievalUnavailableError as exc:
            ctx.emit(
                Stage.search,
                EventKind.warning,
                f"Search failed, continuing without new evidence: {exc}",
                iteration=iteration,
            )
            return []
    for warning in step.warnings:
        ctx.emit(Stage.search, EventKind.warning, warning, iteration=iteration)
    gathered, passages = step.gathered, step.passages
    closely = f", {len(step.closer)} of them read closely from {step.page}" if step.closer else ""
    queries = [
        QueryFeedback(origin=f.candidate.origin, query=f.candidate.text, feedback=round(f.score, 3))
        for f in gathered.feedback
    ]
    best = gathered.feedback[0].candidate if gathered.feedback else None
    ctx.emit(
        Stage.search,
        EventKind.finished,
        f"Found {len(passages)} new passages ({gathered.backend}) from "
        f"{len(queries)} queries{closely}; "
        f"best by feedback: {best.origin if best else 'none'}",
        iteration=iteration,
        payload=SearchDone(
            backend=gathered.backend, urls=[p.url for p in passages], queries=queries
        ),
    )
    return passages
