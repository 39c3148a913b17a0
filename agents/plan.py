"""Stage 1: the research plan, the report's sections and the key question of each."""

from __future__ import annotations

import re

from langgraph.runtime import Runtime

from agents import prompts
from agents.context import ResearchContext
from agents.evolve import Candidate, evolve
from agents.state import ResearchState
from agents.text import clean_model_text
from ttdr.models import EventKind, Plan, PlanSection, Stage

LIST_PREFIX = re.compile(r"^\s*(?:[-*•]|\d+[.)]|#+)\s*")
SECTION_LABEL = re.compile(r"^(?:section|part)\s*\d*\s*[:.\-–]\s*", re.IGNORECASE)
TEMPLATE_ECHOES = ("section title", "key question", "this section", "research question")
FALLBACK_OUTLINE = (
    ("Background and definitions", "What background and definitions does a reader need for: {q}"),
    ("How it works", "What are the mechanisms or methods behind: {q}"),
    ("Evidence and comparisons", "What evidence and comparisons bear on: {q}"),
    ("Limitations and open questions", "What limitations and open questions remain for: {q}"),
)


def plan_node(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict:
    ctx = runtime.context
    question = state["question"]
    count = ctx.config.max_sections
    with ctx.stage(Stage.plan, "Planning the report"):
        prompt = ctx.prompt("plan").format(question=question, count=count)

        def write(temperature: float, seed: int) -> str:
            messages = prompts.chat(prompt)
            return ctx.write(
                Stage.plan, messages, 24 * count + 16, temperature=temperature, seed=seed
            )

        def merge(ranked: list[Candidate]) -> str:
            """The best variant's sections first, then new ones from the others (cross-over)."""
            return "\n".join(c.text for c in ranked)

        evolved = evolve(ctx, "plan", question, write, merge=merge)
        plan = parse_plan(evolved.text, question, count)
        if plan is None:
            plan = fallback_plan(question, count)
            ctx.emit(
                Stage.plan,
                EventKind.warning,
                "The model's plan had fewer than two usable sections; using a standard outline.",
                raw=evolved.text[:500],
            )
    ctx.store.save_plan(ctx.run_id, plan)
    ctx.emit(
        Stage.plan,
        EventKind.finished,
        f"Planned {len(plan.sections)} sections: " + "; ".join(plan.titles()),
        sections=plan.titles(),
    )
    return {"plan": plan}


def parse_plan(text: str, question: str, limit: int) -> Plan | None:
    """Read `Title: key question` lines leniently; None when fewer than two survive."""
    sections: list[PlanSection] = []
    seen: set[str] = set()
    for raw in clean_model_text(text).splitlines():
        line = SECTION_LABEL.sub("", LIST_PREFIX.sub("", raw)).strip().replace("**", "")
        if not line:
            continue
        title, _, key_question = line.partition(":")
        title = title.strip().strip('"').rstrip(".?")
        if not usable_title(title, question) or title.lower() in seen:
            continue
        seen.add(title.lower())
        key_question = key_question.strip() or (
            f"What should a report on {question!r} say about {title.lower()}?"
        )
        sections.append(PlanSection(title=title, question=key_question))
        if len(sections) == limit:
            break
    return Plan(sections=sections) if len(sections) >= 2 else None


def usable_title(title: str, question: str) -> bool:
    """Small models echo the question or the prompt's own wording instead of planning."""
    words = title.lower().split()
    if not 2 <= len(title) <= 80 or not 1 <= len(words) <= 12:
        return False
    letters = sum(ch.isalpha() or ch == " " for ch in title)
    if letters < 0.8 * len(title) or not title.isprintable():
        return False  # byte soup from a model that is not really writing
    if any(echo in title.lower() for echo in TEMPLATE_ECHOES):
        return False
    question_words = set(question.lower().rstrip("?").split())
    return len(words) < 4 or len(set(words) - question_words) >= len(words) / 3


def fallback_plan(question: str, limit: int = len(FALLBACK_OUTLINE)) -> Plan:
    """A neutral outline for when the model's plan is unusable; the run says it used it."""
    sections = [
        PlanSection(title=title, question=template.format(q=question))
        for title, template in FALLBACK_OUTLINE[: max(limit, 2)]
    ]
    return Plan(sections=sections)
