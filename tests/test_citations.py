"""Citation markers: parsed in the forms small models write, renumbered, never left dangling."""

from __future__ import annotations

from agents.citations import cited_numbers, remap_citations
from agents.report import READING_NOTE, build_report, sourced_sentences
from ttdr import Researcher
from ttdr.models import Source


def test_markers_in_every_form_models_write_are_read() -> None:
    text = "A [2]. B [1, 3]. C [4-5]. D [^6]. E [2]. Not a marker: [x] or [ ]."
    assert cited_numbers(text) == [2, 1, 3, 4, 5, 6]


def test_remapping_drops_unknown_numbers_and_reports_them() -> None:
    text, dropped = remap_citations("Fact [1][9]. Other [2, 9] here.", {1: 5, 2: 6}.get)
    assert text == "Fact [5]. Other [6] here."
    assert dropped == [9, 9]


def test_a_marker_that_resolves_to_nothing_leaves_no_stray_space() -> None:
    text, _ = remap_citations("Claim [7].", lambda n: None)
    assert text == "Claim."


def test_a_report_cites_only_retrieved_sources_renumbered_by_first_use() -> None:
    sources = [Source(number=n, url=f"https://s{n}", title=f"S{n}", kind="web") for n in (1, 2, 3)]
    body = "# Q\n\nFirst [3]. Then [1] and [3]. Invented [8]."
    report, dropped = build_report("run", "Q", body, sources)
    assert report.body == "# Q\n\nFirst [1]. Then [2] and [1]. Invented."
    assert [(c.number, c.source_number, c.url) for c in report.references] == [
        (1, 3, "https://s3"),
        (2, 1, "https://s1"),
    ]
    assert dropped == [8]
    assert set(cited_numbers(report.body)) == {c.number for c in report.references}


def test_sentences_are_counted_as_sourced_only_when_they_carry_a_marker() -> None:
    bodies = [
        "Tides follow the Moon [3]. The Sun adds a smaller pull.\n\nSpring tides are big [1][2].",
        "Nothing here cites anything. Nor here.",
        "(Nothing is known yet about tides.)",
    ]
    assert sourced_sentences(bodies) == (2, 5)
    assert sourced_sentences(["", "## Heading only"]) == (0, 0)


def test_a_report_says_how_much_of_it_stands_on_its_sources(settings, tiny_config) -> None:
    researcher = Researcher(tiny_config, settings=settings)
    report = researcher.run("Why does the ocean have tides?")
    counts = researcher.get_run(report.run_id).stats.citations
    assert 0 < counts.sentences_cited <= counts.sentences
    note = READING_NOTE.format(cited=counts.sentences_cited, total=counts.sentences)
    if counts.sentences_cited < counts.sentences:
        assert report.body.splitlines()[2] == note  # right under the title
    else:
        assert "were not checked against a source" not in report.body
