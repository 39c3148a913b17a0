"""The real LangGraph workflow with a tiny real model, the fixture corpus and real SQLite.

The tiny model's text is noise; what is checked is the structure a run must always have.
"""

from __future__ import annotations

import itertools
import re

import pytest

from agents.citations import cited_numbers
from agents.graph import build_graph
from tests.conftest import CORPUS
from ttdr import Researcher
from ttdr.errors import DocsPathError, InvalidQuestionError
from ttdr.models import EventKind, RunStatus, Stage

QUESTION = "Why does the ocean have tides?"


def sections_of(draft: str) -> dict[str, str]:
    parts = re.split(r"^## (.+)$", draft, flags=re.MULTILINE)
    return {title: body for title, body in zip(parts[1::2], parts[2::2], strict=True)}


def test_the_graph_wires_the_ttd_dr_loop() -> None:
    graph = build_graph().get_graph()
    edges = {(e.source, e.target) for e in graph.edges}
    assert {("__start__", "plan"), ("plan", "review"), ("review", "draft")} <= edges
    assert ("questions", "answer") in edges
    assert {("answer", "denoise"), ("denoise", "questions"), ("denoise", "report")} <= edges
    assert {("draft", "questions"), ("draft", "report"), ("questions", "report")} <= edges
    assert ("report", "__end__") in edges


def test_a_run_passes_every_stage_and_stores_everything(settings, tiny_config) -> None:
    researcher = Researcher(tiny_config, settings=settings)
    events = list(researcher.stream(QUESTION))
    run = researcher.get_run(events[-1].run_id)

    assert run.status is RunStatus.done and run.error is None
    assert {e.stage for e in events} == set(Stage)
    assert events[0].kind is EventKind.started and events[-1].kind is EventKind.finished
    assert [e.message for e in researcher.events(run.id)] == [e.message for e in events]

    assert [d.iteration for d in run.drafts_list] == [0, 1, 2]
    assert len(run.qa_pairs) == tiny_config.iterations * tiny_config.questions_per_step
    assert {qa.iteration for qa in run.qa_pairs} == {1, 2}
    assert run.plan is not None and len(run.plan.sections) >= 2
    assert run.stats.generation.tokens > 0
    assert {"plan", "draft", "question", "answer", "revise", "report"} <= set(run.stats.stages)


def test_every_citation_in_the_report_resolves_to_a_retrieved_source(settings, tiny_config) -> None:
    researcher = Researcher(tiny_config, settings=settings)
    report = researcher.run(QUESTION)
    sources = {s.number: s for s in researcher.get_run(report.run_id).sources_list}

    cited = cited_numbers(report.body)
    assert cited, "the answers' sources must reach the report"
    assert cited == [c.number for c in report.references]  # numbered by first appearance
    for citation in report.references:
        assert sources[citation.source_number].url == citation.url
        assert citation.url.startswith("file://") and CORPUS.name in citation.url
    assert "## References" in report.markdown


def test_denoising_touches_only_the_revised_section(settings, tiny_config) -> None:
    researcher = Researcher(tiny_config.model_copy(update={"iterations": 3}), settings=settings)
    run = researcher.get_run(researcher.run(QUESTION).run_id)
    for before, after in itertools.pairwise(run.drafts_list):
        old, new = sections_of(before.text), sections_of(after.text)
        assert old.keys() == new.keys()
        untouched = [title for title in old if title not in after.changed_sections]
        answered = {qa.section for qa in run.qa_pairs if qa.iteration == after.iteration}
        assert set(after.changed_sections) <= answered  # only sections this step researched
        assert all(old[title] == new[title] for title in untouched)  # byte-identical
        for title in after.changed_sections:  # a revision keeps every source it had
            assert set(cited_numbers(old[title])) <= set(cited_numbers(new[title]))


def test_zero_iterations_gives_one_draft_and_a_report(settings, tiny_config) -> None:
    researcher = Researcher(tiny_config.model_copy(update={"iterations": 0}), settings=settings)
    run = researcher.get_run(researcher.run(QUESTION).run_id)
    assert len(run.drafts_list) == 1 and run.report is not None
    assert "No retrieved source supports this section" in run.report.body


@pytest.mark.parametrize("question", ["", "   \n\t"])
def test_an_empty_question_is_refused_before_anything_is_stored(
    settings, tiny_config, question
) -> None:
    researcher = Researcher(tiny_config, settings=settings)
    with pytest.raises(InvalidQuestionError, match="question is empty"):
        researcher.run(question)
    assert researcher.history() == []


def test_a_missing_docs_path_is_refused_before_anything_is_stored(
    settings, tiny_config, tmp_path
) -> None:
    config = tiny_config.model_copy(update={"docs": [tmp_path / "nowhere"]})
    researcher = Researcher(config, settings=settings)
    with pytest.raises(DocsPathError, match="nowhere"):
        researcher.run(QUESTION)
    assert researcher.history() == []


def test_a_stop_request_ends_the_run_as_interrupted_with_its_drafts(settings, tiny_config) -> None:
    """What the UI's Stop button does from another thread: the run ends at its next event."""
    import threading

    from ttdr.errors import RunStopped

    stop = threading.Event()
    researcher = Researcher(tiny_config.model_copy(update={"iterations": 20}), settings=settings)
    seen = []
    with pytest.raises(RunStopped):
        for event in researcher.stream(QUESTION, stop=stop):
            seen.append(event)
            if event.stage is Stage.draft and event.kind is EventKind.finished:
                stop.set()
    run = researcher.get_run(seen[-1].run_id)
    assert run.status is RunStatus.interrupted and run.error == "the run was stopped"
    assert [d.iteration for d in run.drafts_list] == [0]
    assert run.report is None and run.stats.generation.tokens > 0
