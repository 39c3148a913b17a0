"""Structured output by infilling: the skeleton is kept word for word, only blanks change, and
every value is validated before the agent uses it."""

from __future__ import annotations

from agents import forms


def test_a_form_document_marks_one_span_per_blank_over_its_placeholder() -> None:
    form = forms.plan_form("Why do tides happen?", 2)
    document, spans = form.document()
    assert len(spans) == 4 == len(form.blanks)
    assert all(document[s.start : s.end] == forms.BLANK for s in spans)
    assert [s.length for s in spans] == [b.tokens for b in form.blanks]
    assert document.startswith("Research question: Why do tides happen?")
    assert "Section 2 answers the question: " in document


def test_plan_values_are_validated_section_by_section() -> None:
    values = {
        "title_1": "Gravitational pull of the Moon",
        "question_1": "How does the Moon's gravity raise the tides",
        "title_2": "§§ 12 !! ##",  # byte soup: not a title
        "question_2": "What else?",
        "title_3": "Spring and neap tides",
        "question_3": "x",  # not a question
        "title_4": "Section 4 title",  # the form's label written back
        "question_4": "What does the fourth section of the report cover?",
        "title_5": "Acknowledgments",  # a book's furniture
        "question_5": "Who helped to write the report about tides?",
    }
    entries = forms.plan_entries(values, 5)
    assert [(e.title, e.question) for e in entries] == [
        ("Gravitational pull of the Moon", "How does the Moon's gravity raise the tides?")
    ]
    assert forms.plan_lines(entries) == (
        "Gravitational pull of the Moon: How does the Moon's gravity raise the tides?"
    )


def test_a_query_and_a_verdict_are_read_from_their_blanks_or_refused() -> None:
    assert forms.search_query({"query": "lunar tide mechanism"}) == "lunar tide mechanism"
    assert forms.search_query({"query": "?"}) is None
    verdict = forms.verdict_entry(
        {"helpfulness": "7/10", "comprehensiveness": "4", "critique": "No sources on neap tides."}
    )
    assert verdict is not None and (verdict.helpfulness, verdict.comprehensiveness) == (7, 4)
    assert forms.verdict_entry({"helpfulness": "eleven", "comprehensiveness": "4"}) is None
    assert forms.verdict_entry({"helpfulness": "12", "comprehensiveness": "4"}) is None
