"""Plan review: a run that asks for it stops after the plan, waits (surviving a restart) and
goes on with the plan a person accepted or edited, through the real graph and checkpointer."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agents.review import carried_evidence
from ttdr import Researcher
from ttdr.errors import PlanAwaitingReview, RunNotResumableError
from ttdr.events import PlanReady
from ttdr.models import EventKind, Plan, PlanSection, RunStatus, Stage

QUESTION = "Why does the ocean have tides?"
EDITED = Plan(
    sections=[
        PlanSection(title="Gravity of the Moon", question="How does the Moon pull the ocean?"),
        PlanSection(title="Spring and neap tides", question="Why do tides vary in size?"),
    ]
)
REPO = Path(__file__).resolve().parent.parent


def report_titles(markdown: str) -> list[str]:
    titles = re.findall(r"^## (.+)$", markdown, flags=re.MULTILINE)
    return [t for t in titles if t not in ("Summary", "References")]


@pytest.fixture
def review_config(tiny_config):
    return tiny_config.model_copy(update={"review_plan": True, "iterations": 1})


def test_a_reviewed_run_stops_after_the_plan_with_a_typed_event(settings, review_config) -> None:
    researcher = Researcher(review_config, settings=settings)
    events = list(researcher.stream(QUESTION))
    last = events[-1]
    run = researcher.get_run(last.run_id)

    assert last.kind is EventKind.review and last.stage is Stage.plan
    payload = last.payload
    assert isinstance(payload, PlanReady)
    assert [s.title for s in payload.sections] == run.plan.titles()
    assert run.status is RunStatus.review and run.report is None and not run.drafts_list
    assert not any(e.stage is Stage.draft for e in events)  # nothing drafted before review
    assert researcher.history(status=RunStatus.review)[0].id == run.id


def test_run_raises_and_resume_accepts_the_plan_as_planned(settings, review_config) -> None:
    researcher = Researcher(review_config, settings=settings)
    with pytest.raises(PlanAwaitingReview) as waiting:
        researcher.run(QUESTION)
    planned = researcher.get_run(waiting.value.run_id).plan

    report = Researcher(settings=settings).resume(waiting.value.run_id)
    run = researcher.get_run(report.run_id)
    assert run.status is RunStatus.done
    assert report_titles(report.markdown) == planned.titles()
    planning = [e for e in researcher.events(run.id) if e.stage is Stage.plan]
    assert sum(e.kind is EventKind.started for e in planning) == 1  # not planned twice


def test_an_edited_plan_resumed_in_a_new_process_gives_the_reports_sections(
    settings, review_config, home: Path
) -> None:
    """Process one plans and stops; this process is gone by the time process two resumes the
    run with an edited plan, whose sections are then the report's."""
    first = Researcher(review_config, settings=settings)
    events = list(first.stream(QUESTION))
    run_id = events[-1].run_id
    first.store.close()

    script = (
        "import json, sys\n"
        "from ttdr import Researcher\n"
        "from ttdr.models import Plan\n"
        "plan = Plan.model_validate_json(sys.argv[2])\n"
        "report = Researcher().resume(sys.argv[1], plan=plan)\n"
        "print(json.dumps({'markdown': report.markdown}))\n"
    )
    env = {**os.environ, "TTDR_HOME": str(home), "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", script, run_id, EDITED.model_dump_json()],
        capture_output=True, text=True, env=env, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    markdown = json.loads(done.stdout.splitlines()[-1])["markdown"]

    assert report_titles(markdown) == EDITED.titles()
    run = Researcher(settings=settings).get_run(run_id)
    assert run.status is RunStatus.done and run.plan == EDITED
    assert all(set(report_titles(d.text)) == set(EDITED.titles()) for d in run.drafts_list)


def test_rejecting_keeps_the_run_and_resuming_brings_the_review_back(
    settings, review_config
) -> None:
    researcher = Researcher(review_config, settings=settings)
    run_id = list(researcher.stream(QUESTION))[-1].run_id
    researcher.reject_plan(run_id)
    run = researcher.get_run(run_id)
    assert run.status is RunStatus.interrupted and "rejected at review" in run.error
    assert run.plan is not None  # the plan is kept, for a second look

    with pytest.raises(RunNotResumableError, match="not waiting for its plan review"):
        list(researcher.stream_resume(run_id, plan=EDITED))
    again = list(researcher.stream_resume(run_id))
    assert again[-1].kind is EventKind.review
    assert researcher.get_run(run_id).status is RunStatus.review


def test_without_review_a_run_never_stops_for_it(settings, tiny_config) -> None:
    researcher = Researcher(tiny_config.model_copy(update={"iterations": 0}), settings=settings)
    events = list(researcher.stream(QUESTION))
    assert events[-1].kind is EventKind.finished
    assert not any(e.kind is EventKind.review for e in events)
    with pytest.raises(RunNotResumableError):
        researcher.reject_plan(events[-1].run_id)


def test_planning_evidence_follows_its_section_by_title() -> None:
    old = Plan(
        sections=[
            PlanSection(title="Moon", question="a?"),
            PlanSection(title="Sun", question="b?"),
            PlanSection(title="Coasts", question="c?"),
        ]
    )
    new = Plan(
        sections=[PlanSection(title="sun", question="b?"), PlanSection(title="New", question="d")]
    )
    evidence = [
        {"section": 0, "source": 1, "text": "moon"},
        {"section": 1, "source": 2, "text": "sun"},
        {"section": 2, "source": 3, "text": "coast"},
    ]
    assert carried_evidence(old, new, evidence) == [{"section": 0, "source": 2, "text": "sun"}]


def ttdr_research(home: Path, *args: str, stdin: str = "", editor: str | None = None):
    env = {k: v for k, v in os.environ.items() if k not in ("EDITOR", "VISUAL")}
    env |= {"TTDR_HOME": str(home), "TTDR_SECTION_TOKENS": "12", "PYTHONPATH": str(REPO)}
    if editor is not None:
        env["EDITOR"] = editor
    command = [sys.executable, "-m", "ttdr.cli", "research", *args]
    return subprocess.run(
        command, input=stdin, capture_output=True, text=True, env=env, timeout=600, check=False
    )


def test_the_cli_leaves_the_run_waiting_then_resumes_it_with_an_editors_plan(
    home: Path, tiny_model: Path, tmp_path: Path
) -> None:
    from tests.conftest import CORPUS

    options = ["--model", str(tiny_model), "--docs", str(CORPUS), "--search", "local", "-n", "1"]
    waiting = ttdr_research(home, QUESTION, "--review-plan", *options)  # no input: later
    assert waiting.returncode == 0, waiting.stderr
    assert "The plan:" in waiting.stderr and "waits for its plan review" in waiting.stderr
    assert waiting.stdout == ""  # no report yet
    (run,) = _runs(home)
    assert run.status is RunStatus.review

    editor = tmp_path / "editor.py"  # what a person does in $EDITOR: rewrite the sections
    editor.write_text(
        "import sys\n"
        "path = sys.argv[1]\n"
        "kept = [l for l in open(path) if l.startswith('# ')]\n"
        "plan = '## Gravity of the Moon\\nHow does the Moon pull the ocean?\\n'\n"
        "plan += '## Spring and neap tides\\nWhy do tides vary in size?\\n'\n"
        "open(path, 'w').write(''.join(kept) + plan)\n"
    )
    resumed = ttdr_research(
        home, "--resume", run.id, stdin="e\n", editor=f"{sys.executable} {editor}"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "Researching with the edited plan (2 sections)" in resumed.stderr
    assert report_titles(resumed.stdout) == EDITED.titles()
    assert _runs(home)[0].status is RunStatus.done


def test_the_cli_takes_sections_by_line_prompts_or_a_rejection(
    home: Path, tiny_model: Path
) -> None:
    from tests.conftest import CORPUS

    options = ["--model", str(tiny_model), "--docs", str(CORPUS), "--search", "local", "-n", "0"]
    typed = "x\ne\nGravity of the Moon: How does the Moon pull the ocean?\n"
    typed += "Spring and neap tides\n\n"
    edited = ttdr_research(home, QUESTION, "--review-plan", *options, stdin=typed)
    assert edited.returncode == 0, edited.stderr
    assert "Answer a, e, r or l" in edited.stderr  # "x" is not an answer: asked again
    assert report_titles(edited.stdout) == EDITED.titles()

    rejected = ttdr_research(home, QUESTION, "--review-plan", *options, stdin="r\n")
    assert rejected.returncode == 0, rejected.stderr
    assert "Plan rejected" in rejected.stderr and rejected.stdout == ""
    latest = _runs(home)[0]
    assert latest.status is RunStatus.interrupted


def _runs(home: Path):
    from ttdr.store import Store

    return Store(home / "ttdr.db").list_runs()


def test_history_shows_a_waiting_run_s_plan(settings, review_config) -> None:
    from ttdr.export import report_markdown

    researcher = Researcher(review_config, settings=settings)
    run = researcher.get_run(list(researcher.stream(QUESTION))[-1].run_id)
    shown = report_markdown(run)
    assert f"ttdr research --resume {run.id}" in shown
    assert all(f"**{title}**" in shown for title in run.plan.titles())
