"""The citation ledger: a sentence cites a source only when that source supports it."""

from __future__ import annotations

from agents.attribution import attribute, extractive_answer, support
from agents.text import clean_model_text

SOURCES = {
    3: "Spring tides occur when the Sun and the Moon line up, which adds their pulls together.",
    5: "Sourdough bread rises because wild yeast and lactic acid bacteria ferment the dough.",
}


def test_support_counts_the_sentence_words_found_in_the_source() -> None:
    assert support("Spring tides occur when the Sun and Moon line up.", SOURCES[3]) == 1.0
    assert support("Spring tides occur when the Sun and Moon line up.", SOURCES[5]) == 0.0
    assert support("Yes.", SOURCES[3]) == 0.0  # too short to judge


def test_a_wrong_citation_is_moved_to_the_source_that_supports_the_sentence() -> None:
    result = attribute(
        "Spring tides occur when the Sun and Moon line up [5].", SOURCES, keep_unsupported=False
    )
    assert result.text == "Spring tides occur when the Sun and Moon line up [3]."
    assert result.cited == [3]


def test_answers_drop_what_no_source_supports_and_drafts_keep_it_uncited() -> None:
    text = "Wild yeast ferments sourdough dough. Tides were discovered by ancient Martians [3]."
    answer = attribute(text, SOURCES, keep_unsupported=False)
    assert answer.text == "Wild yeast ferments sourdough dough [5]."
    assert answer.unsupported == ["Tides were discovered by ancient Martians."]
    draft = attribute(text, SOURCES, keep_unsupported=True)
    assert draft.text.endswith("Tides were discovered by ancient Martians.")
    assert draft.cited == [5]


def test_an_unsupported_answer_is_replaced_by_quoting_the_best_sentences() -> None:
    result = extractive_answer("When do spring tides occur?", SOURCES, sentences=1)
    assert result.text == (
        "Spring tides occur when the Sun and the Moon line up, which adds their pulls together [3]."
    )
    assert result.cited == [3]


def test_echoed_instructions_and_repeated_sentences_are_removed() -> None:
    instruction = "Rewrite the section so that it includes the new evidence. Reply with {x} only."
    raw = (
        "Rewrite the section so that it includes the new evidence. The Moon pulls water. "
        "The Moon pulls water.\n- list item stays"
    )
    assert (
        clean_model_text(raw, instruction=instruction) == "The Moon pulls water.\n- list item stays"
    )


def test_quotes_never_include_markdown_headings() -> None:
    sources = {1: "## Why it helps\n\nSpring tides occur when the Sun and the Moon line up."}
    result = extractive_answer("spring tides", sources, sentences=2)
    assert result.text == "Spring tides occur when the Sun and the Moon line up [1]."


def test_hard_wrapped_sentences_are_read_whole() -> None:
    from agents.text import split_sentences

    text = "# Title\nThe Moon pulls\nthe oceans. Tides follow.\n\n## Next\nAnother one."
    assert split_sentences(text) == ["The Moon pulls the oceans.", "Tides follow.", "Another one."]
