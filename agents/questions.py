"""Stage 2a: the next search question, aimed at the draft's least-researched section."""

from __future__ import annotations

import re
from collections import Counter

from langgraph.runtime import Runtime

from agents import prompts
from agents.context import ResearchContext
from agents.state import ResearchState
from agents.text import clean_model_text, first_line
from ttdr.models import EventKind, Stage

QUERY_LABEL = re.compile(r"^(?:search )?query\s*[:\-]\s*", re.IGNORECASE)
MAX_QUERY_WORDS = 16


def question_node(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict:
    ctx = runtime.context
    plan, qa_pairs = state["plan"], state.get("qa_pairs", [])
    iteration = state["iteration"] + 1
    target = least_researched_section(
        [s.title for s in plan.sections], [qa.section for qa in qa_pairs]
    )
    section = plan.sections[target]
    with ctx.stage(
        Stage.question, f"Choosing what to search for next ({section.title})", iteration=iteration
    ):
        prompt = prompts.SEARCH_QUERY.format(
            question=state["question"],
            title=section.title,
            section_text=state["sections"][target][:800],
        )
        raw = ctx.write(Stage.question, prompts.chat(prompt), max_new_tokens=32)
        asked = {qa.question.lower() for qa in qa_pairs}
        query = parse_query(raw)
        if query is None or query.lower() in asked:
            query = f"{section.title}: {section.question}"
            if query.lower() in asked:
                query = f"{section.question} {state['question']}"
    ctx.emit(
        Stage.question,
        EventKind.finished,
        f"Search question: {query}",
        iteration=iteration,
        section=section.title,
        query=query,
    )
    return {"task": {"section": target, "query": query}}


def least_researched_section(titles: list[str], researched: list[str]) -> int:
    counts = Counter(researched)
    return min(range(len(titles)), key=lambda i: (counts[titles[i]], i))


def parse_query(text: str) -> str | None:
    """The first line, without labels and quotes; None if it is not a usable query."""
    line = QUERY_LABEL.sub("", first_line(clean_model_text(text))).strip().strip("\"'`").strip()
    words = line.split()
    if len(words) < 2 or not re.search(r"[A-Za-z]", line):
        return None
    return " ".join(words[:MAX_QUERY_WORDS])
