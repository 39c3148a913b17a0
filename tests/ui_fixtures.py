"""Helpers for the UI tests: the app under AppTest, an environment for fast real runs, and
runs written straight into the store for states a real run reaches only by chance."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ttdr.models import (
    Citation,
    DraftVersion,
    EventKind,
    Plan,
    PlanSection,
    QAPair,
    Report,
    ResearchConfig,
    RunEvent,
    RunStatus,
    Stage,
)
from ttdr.store import Store
from ui import worker

APP = Path(__file__).resolve().parents[1] / "ui" / "app.py"
QUESTION = "Why does the ocean have tides?"


@pytest.fixture
def ui_env(home: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh data directory whose default model is the tiny checkpoint; fast settings.
    Any run still going at the end of the test is stopped before its folder goes away."""
    monkeypatch.setenv("TTDR_MODEL", str(tiny_model))
    monkeypatch.setenv("TTDR_SEARCH", "local")
    monkeypatch.setenv("TTDR_SECTION_TOKENS", "12")
    monkeypatch.setenv("TTDR_ITERATIONS", "2")
    monkeypatch.setenv("TTDR_VARIANTS", "1")  # self-evolution off unless a test turns it on
    monkeypatch.setenv("TTDR_EVOLUTION_ROUNDS", "0")
    yield home
    for run_id in worker.active_run_ids():
        worker.request_stop(run_id)
        worker.wait_for(run_id, 60)


def open_app(page: str | None = None, *, run: str | None = None) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=60)
    if run is not None:
        at.query_params["run"] = run
    at.run()
    if page is not None:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def run_param(at: AppTest) -> str:
    value = at.query_params["run"]
    return value[0] if isinstance(value, list) else value


def unescaped(markdown: str) -> str:
    """Markdown as a reader sees it: backslash escapes removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def page_text(at: AppTest) -> str:
    """Every Markdown-bearing element's text, unescaped, in one string to search."""
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption]
    parts += [e.value for kind in ("info", "warning", "error", "success") for e in at.get(kind)]
    parts += [s.label for s in at.status] + [e.label for e in at.expander]
    parts += [t.value for t in at.title]
    return unescaped("\n".join(str(p) for p in parts))


DRAFTS = [
    "## Causes\n\nThe Moon pulls the water.\n\n## Effects\n\nTwo tides a day.",
    "## Causes\n\nThe Moon and the Sun pull the water [1].\n\n## Effects\n\nTwo tides a day.",
    "## Causes\n\nThe Moon and the Sun pull the water [1].\n\n## Effects\n\nTwo high tides a "
    "day, spring tides at full moon [1][2].",
]


def stored_run(
    store: Store,
    *,
    status: RunStatus = RunStatus.done,
    question: str = QUESTION,
    drafts: list[str] = DRAFTS,
    error: str | None = None,
    source_title: str = "Why the sea has tides",
    report: bool = True,
) -> str:
    """A run as the workflow leaves it, written through the store's own API."""
    run_id = store.create_run(question, ResearchConfig(model="tiny", search="web", iterations=2))
    store.save_plan(
        run_id,
        Plan(
            sections=[
                PlanSection(title="Causes", question="What causes tides?"),
                PlanSection(title="Effects", question="What do tides do?"),
            ]
        ),
    )

    def event(stage: Stage, kind: EventKind, message: str, iteration=None, **data) -> None:
        store.add_event(
            RunEvent(
                run_id=run_id,
                stage=stage,
                kind=kind,
                message=message,
                iteration=iteration,
                data=data,
            )
        )

    event(Stage.run, EventKind.started, f"Research started: {question}")
    event(Stage.plan, EventKind.finished, "Planned 2 sections: Causes; Effects")
    first = store.add_source(
        run_id, url="https://example.org/tides", title=source_title, kind="web", excerpt="Moon."
    )
    second = store.add_source(
        run_id, url="file:///docs/spring.md", title="Spring tides", kind="local", excerpt="Sun."
    )
    for iteration, text in enumerate(drafts):
        changed = (
            ["Causes", "Effects"]
            if iteration == 0
            else [("Causes", "Effects")[(iteration - 1) % 2]]
        )
        store.add_draft(
            run_id, DraftVersion(iteration=iteration, text=text, changed_sections=changed)
        )
        stage = Stage.draft if iteration == 0 else Stage.revise
        event(stage, EventKind.finished, f"Draft R{iteration} written", iteration=iteration or None)
        if iteration:
            store.add_qa(
                run_id,
                QAPair(
                    iteration=iteration,
                    section=changed[0],
                    question=f"What about {changed[0].lower()}?",
                    answer=f"Answer {iteration} [{first.number}]",
                    source_numbers=[first.number] + ([second.number] if iteration == 2 else []),
                ),
            )
    event(
        Stage.search,
        EventKind.warning,
        "Skipped https://blocked.example/page: robots.txt disallows it",
        iteration=1,
        url="https://blocked.example/page",
        reason="robots.txt disallows it",
        category="robots",
    )
    event(Stage.search, EventKind.warning, "Web search failed; searched the local index instead")
    if report and status is RunStatus.done:
        store.save_report(
            Report(
                run_id=run_id,
                question=question,
                body=drafts[-1],
                references=[
                    Citation(
                        number=1, source_number=first.number, title=first.title, url=first.url
                    ),
                    Citation(
                        number=2, source_number=second.number, title=second.title, url=second.url
                    ),
                ],
            )
        )
        event(Stage.report, EventKind.finished, "Report written with 2 references")
    if status is not RunStatus.running:
        store.set_status(run_id, status, error)
        closing = EventKind.finished if status is RunStatus.done else EventKind.error
        event(Stage.run, closing, "Research ended")
    return run_id
