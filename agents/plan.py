"""Stage 1: the research plan, the report's sections and the key question of each."""

from __future__ import annotations

import re

from langgraph.runtime import Runtime

from agents import forms, prompts
from agents.attribution import content_words
from agents.context import ResearchContext
from agents.evidence import QueryCandidate, judge_query, keep_evidence, key_terms
from agents.evolve import Candidate, evolve
from agents.language import fallback_note, phrases, settle_language, written_in
from agents.state import Evidence, ResearchState
from agents.text import clean_model_text
from backends.search.types import Passage
from ttdr.errors import RetrievalUnavailableError
from ttdr.models import EventKind, Plan, PlanSection, Stage

LIST_PREFIX = re.compile(r"^\s*(?:[-*•]|\d+[.)]|#+)\s*")
SECTION_LABEL = re.compile(r"^(?:section|part)\s*\d*\s*[:.\-–]\s*", re.IGNORECASE)
TEMPLATE_ECHOES = ("section title", "key question", "this section", "research question")
OUTLINE_DEPTH = 16
HEADINGS_PER_PAGE = 2
GENERIC_HEADINGS = frozenset(
    "description synopsis options overview summary introduction details discussion notes "  # noqa: SIM905
    "examples example usage configuration name see also variables commands".split()
)
FALLBACK_OUTLINE = phrases("en").outline  # each language's: agents/language.py


def plan_node(state: ResearchState, runtime: Runtime[ResearchContext]) -> dict:
    ctx = runtime.context
    question = state["question"]
    count = ctx.config.max_sections
    language = settle_language(ctx, question)
    with ctx.stage(Stage.plan, "Planning the report"):
        if note := fallback_note(ctx.config.language):
            ctx.emit(Stage.plan, EventKind.warning, note)
        prompt = ctx.prompt("plan").format(question=question, count=count)

        def write(temperature: float, seed: int) -> str:
            messages = prompts.chat(prompt)
            return ctx.write(
                Stage.plan, messages, 24 * count + 16, temperature=temperature, seed=seed
            )

        def merge(ranked: list[Candidate]) -> str:
            """The best variant's sections first, then new ones from the others (cross-over)."""
            return "\n".join(c.text for c in ranked)

        def signal(text: str) -> float:
            parsed = parse_plan(text, question, count, language)
            return plan_feedback(ctx, question, parsed) if parsed else 0.0

        evolved = evolve(ctx, "plan", question, write, merge=merge, signal=signal)
        outline = headings_plan(ctx, question, count, language)
        written = parse_plan(evolved.text, question, count, language)
        model_plan = better_plan(ctx, question, written, infilled_plan(ctx, question, language))
        plan, how = choose_plan(ctx, question, model_plan, outline)
        if how != "model":
            ctx.emit(Stage.plan, EventKind.warning, how, raw=evolved.text[:500])
        evidence = outline_evidence(ctx, outline) if outline and plan is outline[0] else []
    record_plan(ctx, plan, "Planned")
    return {"plan": plan, "evidence": evidence}


def record_plan(ctx: ResearchContext, plan: Plan, how: str) -> None:
    """Store the run's plan and announce its sections (planned, or edited at review)."""
    ctx.store.save_plan(ctx.run_id, plan)
    ctx.emit(
        Stage.plan,
        EventKind.finished,
        f"{how} {len(plan.sections)} sections: " + "; ".join(plan.titles()),
        sections=plan.titles(),
    )


Outline = tuple[Plan, list[list[Passage]]]


def infilled_plan(ctx: ResearchContext, question: str, language: str = "en") -> Plan | None:
    """The plan as a form whose titles and key questions alone are generated (by infilling),
    each validated; None when the model cannot infill or fewer than two sections pass."""
    editor = ctx.editor_for(Stage.plan)
    if editor is None:
        return None
    count = ctx.config.max_sections
    values = ctx.fill(Stage.plan, editor, forms.plan_form(question, count))
    entries = forms.plan_entries(values, count)
    plan = parse_plan(forms.plan_lines(entries), question, count, language)
    kept = len(plan.sections) if plan else 0
    ctx.emit(
        Stage.plan,
        EventKind.progress,
        f"Plan form: {kept} of {count} infilled sections are usable",
    )
    return plan


def better_plan(
    ctx: ResearchContext, question: str, written: Plan | None, infilled: Plan | None
) -> Plan | None:
    """Of the model's two plans (free text, infilled form), the one that retrieves better."""
    if written is None or infilled is None:
        return written or infilled
    if plan_feedback(ctx, question, infilled) > plan_feedback(ctx, question, written):
        return infilled
    return written


def choose_plan(
    ctx: ResearchContext, question: str, model_plan: Plan | None, found: Outline | None
) -> tuple[Plan, str]:
    """The model's plan or an outline from the headings of the pages the question retrieves,
    whichever retrieves better (retrieval feedback); a neutral outline only when nothing can
    be retrieved at all. Returns the plan and "model" or what was used instead, and why."""
    outline = found[0] if found else None
    if outline is None:
        if model_plan is not None:
            return model_plan, "model"
        language = settle_language(ctx, question)
        return fallback_plan(question, ctx.config.max_sections, language), (
            "The model's plan was unusable and the question retrieved no pages to outline "
            "from; using a neutral outline."
        )
    if model_plan is None:
        return outline, (
            "The model's plan had fewer than two usable sections; the outline comes from the "
            "headings of the pages the question retrieves."
        )
    ours, theirs = plan_feedback(ctx, question, model_plan), plan_feedback(ctx, question, outline)
    if ours > theirs:
        return model_plan, "model"
    return outline, (
        f"The model's plan retrieved less relevant evidence ({ours:.2f}) than an outline from "
        f"the retrieved pages' headings ({theirs:.2f}); using the outline."
    )


def headings_plan(
    ctx: ResearchContext, question: str, count: int, language: str = "en"
) -> Outline | None:
    """STORM-style: the sections the best-matching pages give the question's subject, with
    the passages each came from (the section's first evidence). Pages that several of the
    top hits come from lead (a feature's own manual page), at most `HEADINGS_PER_PAGE` each."""
    try:
        outcome = ctx.retriever.search(question, OUTLINE_DEPTH, per_document=3)
    except RetrievalUnavailableError:
        return None
    hits: dict[str, list[Passage]] = {}
    for passage in outcome.passages:
        hits.setdefault(passage.url, []).append(passage)
    pages = sorted(hits, key=lambda url: -len(hits[url]))  # stable: ties keep rank order
    sections: list[PlanSection] = []
    passages: list[list[Passage]] = []
    by_title: dict[str, int] = {}
    template = phrases(language).outline_question
    for url in pages:
        taken = 0
        for passage in hits[url]:
            title = outline_title(passage.title)
            if title.lower() in by_title:
                passages[by_title[title.lower()]].append(passage)
                continue
            if not title or len(sections) == count or taken == HEADINGS_PER_PAGE:
                continue
            if not usable_title(title, question):
                continue
            by_title[title.lower()] = len(sections)
            sections.append(
                PlanSection(title=title, question=template.format(title=title, q=question))
            )
            passages.append([passage])
            taken += 1
    return (Plan(sections=sections), passages) if len(sections) >= 2 else None


def outline_evidence(ctx: ResearchContext, outline: Outline) -> list[Evidence]:
    """The passages the outline was made from: the run's first sources and evidence."""
    return [
        item
        for index, passages in enumerate(outline[1])
        for item in keep_evidence(ctx, index, passages)
    ]


def outline_title(passage_title: str) -> str:
    """`git-rebase(1) Manual Page › OPTIONS` → `git-rebase(1): options`; a page's own title
    when its heading is generic."""
    page, _, heading = passage_title.partition(" › ")
    page = re.sub(r"\s*(manual page|documentation|- .*)$", "", page, flags=re.I).strip()
    heading = heading.strip()
    if not heading:
        return page[:80]
    if heading.isupper() or heading.lower() in GENERIC_HEADINGS:
        heading = heading.capitalize()
        return f"{page}: {heading}"[:80] if page else heading[:80]
    return heading[:80]


def plan_feedback(ctx: ResearchContext, question: str, plan: Plan) -> float:
    """Mean retrieval feedback of the plan's sections: do their searches find passages that
    share the question's key terms?"""
    wanted = content_words(question)
    if not wanted or not plan.sections:
        return 0.0
    values = []
    for section in plan.sections:
        query = " ".join([section.title, *key_terms(question)[:6]])
        try:
            hits = ctx.retriever.search(query, 5, per_document=3).passages
        except RetrievalUnavailableError:
            return 0.0
        candidate = QueryCandidate(query, "section")
        values.append(judge_query(candidate, hits, wanted, lambda p: False).relevance)
    return sum(values) / len(values)


def parse_plan(text: str, question: str, limit: int, language: str = "en") -> Plan | None:
    """Read `Title: key question` lines leniently; None when fewer than two survive. In a run
    that is not in English, a line in another language (the small English model's) is left
    out: its title would be searched for and head a section of the report."""
    sections: list[PlanSection] = []
    template = phrases(language).section_question
    seen: set[str] = set()
    for raw in clean_model_text(text).splitlines():
        line = SECTION_LABEL.sub("", LIST_PREFIX.sub("", raw)).strip().replace("**", "")
        if not line:
            continue
        title, _, key_question = line.partition(":")
        title = title.strip().strip('"').rstrip(".?")
        if not usable_title(title, question) or title.lower() in seen:
            continue
        if not written_in(line, language):
            continue
        seen.add(title.lower())
        key_question = key_question.strip() or template.format(
            q=question, title=title, topic=title.lower()
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


def fallback_plan(question: str, limit: int = len(FALLBACK_OUTLINE), language: str = "en") -> Plan:
    """A neutral outline for when the model's plan is unusable; the run says it used it."""
    sections = [
        PlanSection(title=title, question=template.format(q=question))
        for title, template in phrases(language).outline[: max(limit, 2)]
    ]
    return Plan(sections=sections)
