"""Splitting text into passages and ranking them with FTS5 BM25."""

from __future__ import annotations

from backends.search.passages import fts_match_query, rank_passages, split_passages


def sentence(i: int) -> str:
    return f"Sentence number {i} has exactly eight words here."


def test_passages_keep_offsets_and_stay_within_the_word_budget() -> None:
    paragraphs = [
        " ".join(sentence(i * 10 + j) for j in range(n)) for i, n in enumerate([3, 9, 30, 1])
    ]
    text = "\n\n".join(paragraphs)

    spans = split_passages(text, min_words=100, max_words=180)

    assert all(text[s.start : s.end] == s.text for s in spans)
    assert all(len(s.text.split()) <= 180 for s in spans)
    assert " ".join(s.text for s in spans).split() == text.split()  # nothing lost, nothing doubled
    assert all(len(s.text.split()) >= 80 for s in spans[:-1])


def test_a_sentence_without_full_stops_is_cut_by_words() -> None:
    text = " ".join(f"w{i}" for i in range(500))

    spans = split_passages(text, max_words=180)

    assert [len(s.text.split()) for s in spans] == [180, 180, 140]


def test_short_text_is_one_passage() -> None:
    assert [s.text for s in split_passages("  One short note.  ")] == ["One short note."]
    assert split_passages("\n\n  \n") == []


def test_query_words_are_quoted_and_stopwords_dropped() -> None:
    assert fts_match_query('What is "block" diffusion: AND -x?') == (
        '"block" OR "diffusion" OR "x"'
    )
    assert fts_match_query("what is it") == '"what" OR "is" OR "it"'
    assert fts_match_query("?!") is None


def test_ranking_prefers_the_passage_with_the_rarer_words_and_stems() -> None:
    candidates = [
        ("Soup", "A recipe with tomatoes and a model kitchen."),
        ("Decoding", "The model commits confident tokens while denoising the masked draft."),
        ("Other", "Nothing relevant at all."),
    ]

    ranked = rank_passages("how are masked tokens denoised", candidates)

    assert [r.index for r in ranked] == [1]
    assert ranked[0].score > 0
