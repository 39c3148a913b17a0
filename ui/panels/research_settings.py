"""The finer settings of a new run: sizes, sampling, and self-evolution (TTD-DR §3.3)."""

from __future__ import annotations

from typing import Any, get_args

import streamlit as st

from ttdr.api import check_model
from ttdr.config import Settings
from ttdr.language import LanguageSetting, language_name
from ttdr.models import Length, ResearchConfig
from ui import icons
from ui.safe_markdown import escape_markdown

COMPONENTS = {
    "plan": "Plan",
    "questions": "Search questions",
    "answer": "Answers",
    "report": "Final report",
}


def more_settings(settings: Settings) -> tuple[dict[str, Any], bool]:
    """The widgets, folded away; returns the ResearchConfig fields they set, and whether a run
    can start with them (a judge model that cannot load keeps it from starting)."""
    defaults = settings.research_config()  # TTDR_* settings, then the config's own defaults
    with st.expander("More settings"):
        a, b, c = st.columns(3)
        chosen: dict[str, Any] = {
            "questions_per_step": a.number_input(
                "Search questions per step", 1, 8, defaults.questions_per_step, key="questions"
            ),
            "max_sections": b.number_input(
                "Report sections (at most)", 1, 12, defaults.max_sections, key="max_sections"
            ),
            "section_tokens": c.number_input(
                "Tokens per section", 8, 4096, defaults.section_tokens, key="section_tokens"
            ),
            "search_results": a.number_input(
                "Search hits per query", 1, 20, defaults.search_results, key="search_results"
            ),
            "passages_per_answer": b.number_input(
                "Passages per answer", 1, 12, defaults.passages_per_answer, key="passages"
            ),
            "temperature": c.number_input(
                "Temperature (0 = greedy)", 0.0, 2.0, defaults.temperature, 0.1, key="temperature"
            ),
            "seed": a.number_input("Seed", value=defaults.seed, step=1, key="seed"),
        }
        chosen["review_plan"] = st.toggle(
            "Review the plan before researching",
            value=defaults.review_plan,
            key="review_plan",
            help="The run stops after planning; its page shows the plan to edit, then Start "
            "research goes on with it.",
        )
        chosen.update(report_settings(settings, defaults))
        chosen["denoise"] = st.toggle(
            "Denoise the draft with each step's answers",
            value=defaults.denoise,
            key="denoise",
            help="Off: the report is assembled from the answers (a search-and-summarise "
            "baseline, to compare against).",
        )
        st.markdown("**Self-evolution** — variants → judge → revise with the critique → merge")
        chosen["evolve"] = st.multiselect(
            "Components that evolve",
            list(COMPONENTS),
            default=defaults.evolve,
            format_func=COMPONENTS.__getitem__,
            key="evolve",
        )
        d, e = st.columns(2)
        chosen["variants"] = d.number_input(
            "Variants per component", 1, 8, defaults.variants, key="variants"
        )
        chosen["evolution_rounds"] = e.number_input(
            "Revision rounds", 0, 4, defaults.evolution_rounds, key="evolution_rounds"
        )
        judge = st.text_input(
            "Judge model",
            value=defaults.judge_model or "",
            key="judge_model",
            placeholder="empty: the research model judges its own drafts",
            help="A preset or checkpoint folder; a second model is a less lenient judge.",
        ).strip()
        chosen["judge_model"] = judge or None
        judge_check = check_model(judge, settings.model_cache) if judge else None
        if judge_check is not None and not judge_check.runnable:
            st.error(escape_markdown(judge_check.message), icon=icons.ERROR)
    return chosen, judge_check is None or judge_check.runnable


def report_settings(settings: Settings, defaults: ResearchConfig) -> dict[str, Any]:
    """The report's language and size (independent of the research depth): `words`, when
    given, overrides `length`."""
    f, g, h = st.columns(3)
    languages = list(get_args(LanguageSetting))
    language = f.selectbox(
        "Language",
        languages,
        index=languages.index(settings.language),
        format_func=lambda code: "auto: the question's" if code == "auto" else (
            f"{language_name(code)} ({code})"
        ),
        key="language",
        help="The plan, the search queries and the report are in this language.",
    )  # fmt: skip
    lengths = list(get_args(Length))
    length = g.selectbox(
        "Report length", lengths, index=lengths.index(defaults.length), key="length"
    )
    words = h.number_input(
        "Report words (0: by length)",
        0,
        20000,
        defaults.words or 0,
        50,
        key="words",
        help="About this many words; overrides the length (at least 50).",
    )
    return {"language": language, "length": length, "words": int(words) or None}
