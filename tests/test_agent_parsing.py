"""Lenient parsing of small-model output: plans, search queries and cleaned text."""

from __future__ import annotations

from agents.attribution import support
from agents.plan import fallback_plan, parse_plan
from agents.questions import least_researched_sections, parse_query
from agents.text import clean_model_text

QUESTION = "How do tides work?"


def test_a_numbered_plan_with_key_questions_is_read() -> None:
    text = (
        "Here is the plan:\n1. **Gravity of the Moon**: Why does the Moon pull the oceans?\n"
        "2) Section 2: Spring and neap tides: When are tides strongest?\n- Local effects\n"
    )
    plan = parse_plan(text, QUESTION, limit=4)
    assert [s.title for s in plan.sections] == [
        "Gravity of the Moon",
        "Spring and neap tides",
        "Local effects",
    ]
    assert plan.sections[0].question == "Why does the Moon pull the oceans?"
    assert "local effects" in plan.sections[2].question


def test_echoes_of_the_question_or_the_prompt_are_not_sections() -> None:
    text = (
        "1. How do tides work?\n2. How do tides work?\n"
        "Section title: the key question this section answers\n"
    )
    assert parse_plan(text, QUESTION, limit=4) is None


def test_the_plan_respects_the_section_limit_and_the_fallback_is_sized_to_it() -> None:
    text = "\n".join(f"{i}. Topic number {i}" for i in range(1, 9))
    assert len(parse_plan(text, QUESTION, limit=3).sections) == 3
    assert len(fallback_plan(QUESTION, 3).sections) == 3
    assert len(fallback_plan(QUESTION, 1).sections) == 2


def test_search_queries_lose_labels_and_quotes_and_junk_is_refused() -> None:
    assert parse_query('Query: "moon gravity ocean tides"\nmore') == "moon gravity ocean tides"
    assert parse_query("<think>hmm</think>tidal range Bay of Fundy") == "tidal range Bay of Fundy"
    assert parse_query("...") is None
    assert parse_query("") is None


def test_the_least_researched_section_is_chosen_first() -> None:
    assert least_researched_sections(["a", "b", "c"], ["a", "c", "a"], 1) == [1]
    assert least_researched_sections(["a", "b"], [], 1) == [0]
    assert least_researched_sections(["a", "b", "c"], ["a", "c", "a"], 2) == [1, 2]


def test_model_text_is_cleaned_of_preambles_headings_and_reasoning() -> None:
    raw = "<think>plan it</think>Sure! Here is the section:\n## Gravity\nThe Moon pulls."
    assert clean_model_text(raw, heading="Gravity") == "The Moon pulls."


def test_evidence_coverage_tells_a_real_revision_from_an_echo() -> None:
    """The denoiser keeps a rewrite only if it still holds most of the evidence's words."""
    evidence = "Spring tides happen when the Sun and Moon align [2]."
    assert support(evidence, "At new moon the Sun and Moon align, giving spring tides [2].") > 0.6
    assert support(evidence, "The section is rewritten to include evidence.") < 0.3
