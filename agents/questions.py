"""Stage 2a: the step's search questions, one per least-researched section of the draft.

The questions become parallel branches (LangGraph `Send`). The node may also end the loop: when
every section already has evidence and the model says each section it looked at needs no more
research (DONE), the draft is complete.
"""

from __future__ import annotations

import re
from collections import Counter

from langgraph.runtime import Runtime

from agents import forms, prompts
from agents.context import ResearchContext
from agents.evidence import opening
from agents.evolve import evolve
from agents.language import settle_language, written_in
from agents.state import Evidence, ResearchState, SearchTask
from agents.text import clean_model_text, first_line
from ttdr.models import EventKind, Stage

QUERY_LABEL = re.compile(r"^(?:search )?query\s*[:\-]\s*", re.IGNORECASE)
DONE = re.compile(r"^\W*(done|enough|complete)\W*$", re.IGNORECASE)
MAX_QUERY_WORDS = 16


def question_node(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict:
    ctx = runtime.context
    plan, qa_pairs = state["plan"], state.get("qa_pairs", [])
    iteration = state["iteration"] + 1
    titles = [s.title for s in plan.sections]
    researched = [qa.section for qa in qa_pairs if qa.source_numbers]
    targets = least_researched_sections(titles, researched, ctx.config.questions_per_step)
    asked = {qa.question.lower() for qa in qa_pairs}
    tasks: list[SearchTask] = []
    done_votes = 0
    language = settle_language(ctx, state["question"])
    with ctx.stage(Stage.question, "Choosing what to search for next", iteration=iteration):
        for target in targets:
            section = plan.sections[target]
            prompt = ctx.prompt("questions").format(
                question=state["question"],
                title=section.title,
                section_text=state["sections"][target][:800],
            )

            def write(temperature: float, seed: int, prompt: str = prompt) -> str:
                return ctx.write(
                    Stage.question, prompts.chat(prompt), 32, temperature=temperature, seed=seed
                )

            raw = evolve(ctx, "questions", state["question"], write, iteration=iteration).text
            if DONE.match(first_line(clean_model_text(raw)) or ""):
                done_votes += 1
            model_query = in_run_language(parse_query(raw), language)
            form_query = in_run_language(
                infilled_query(ctx, state["question"], section.title, state["sections"][target]),
                language,
            )
            query = choose_query(
                model_query or form_query, section.title, section.question, state, asked
            )
            asked.add(query.lower())
            tasks.append(
                SearchTask(
                    question=state["question"],
                    section=target,
                    section_title=section.title,
                    section_question=section.question,
                    query=query,
                    model_query=model_query,
                    form_query=form_query,
                    iteration=iteration,
                    read=read_openings(state.get("evidence", [])),
                )
            )
    if done_votes == len(targets) and set(titles) <= set(researched):
        reason = f"the draft is complete (step {iteration}: no section needs more research)"
        ctx.emit(Stage.question, EventKind.finished, reason, iteration=iteration)
        return {"tasks": [], "stop_reason": reason}
    for task in tasks:
        ctx.emit(
            Stage.question,
            EventKind.finished,
            f"Search question: {task['query']}",
            iteration=iteration,
            section=task["section_title"],
            query=task["query"],
        )
    return {"tasks": tasks}


def infilled_query(
    ctx: ResearchContext, question: str, title: str, section_text: str
) -> str | None:
    """The search query as the one blank of a form (validated); None when the model cannot
    infill or its query is not one."""
    editor = ctx.editor_for(Stage.question)
    if editor is None:
        return None
    return forms.search_query(
        ctx.fill(Stage.question, editor, forms.query_form(question, title, section_text))
    )


def in_run_language(query: str | None, language: str) -> str | None:
    """The model's query, unless it is in another language than the run's: a German question
    is searched in German, and the default model writes English."""
    return query if query and written_in(query, language) else None


def read_openings(evidence: list[Evidence]) -> dict[int, str]:
    """What `SearchTask.read` holds: each source's passage openings, one per line."""
    read: dict[int, list[str]] = {}
    for item in evidence:
        read.setdefault(item["source"], []).append(opening(item["text"]))
    return {source: "\n".join(openings) for source, openings in read.items()}


def least_researched_sections(titles: list[str], researched: list[str], count: int) -> list[int]:
    counts = Counter(researched)
    order = sorted(range(len(titles)), key=lambda i: (counts[titles[i]], i))
    return order[: min(count, len(titles))]


def choose_query(
    parsed: str | None, title: str, key_question: str, state: ResearchState, asked: set[str]
) -> str:
    """The model's query unless unusable or already asked; then the plan's own question."""
    for query in (parsed, f"{title}: {key_question}", f"{key_question} {state['question']}"):
        if query and query.lower() not in asked:
            return query
    return f"{title} {state['question']} ({len(asked)})"


def parse_query(text: str) -> str | None:
    """The first line, without labels and quotes; None if it is not a usable query."""
    line = QUERY_LABEL.sub("", first_line(clean_model_text(text))).strip().strip("\"'`").strip()
    words = line.split()
    if len(words) < 2 or not any(ch.isalpha() for ch in line) or DONE.match(line):
        return None
    return " ".join(words[:MAX_QUERY_WORDS])
