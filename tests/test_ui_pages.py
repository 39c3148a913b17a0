"""Every page and state of the UI under Streamlit's AppTest: real runs of the tiny model on the
fixture corpus in a temporary TTDR_HOME, and stored runs for the states a run reaches rarely."""

from __future__ import annotations

import re
import socket
import sqlite3
import subprocess
import sys
import threading
from datetime import date, timedelta

from tests.conftest import CORPUS
from tests.ui_fixtures import (
    QUESTION,
    open_app,
    page_text,
    run_param,
    stored_run,
    ui_env,
    unescaped,
)
from ttdr.api import Researcher
from ttdr.config import Settings
from ttdr.models import EventKind, RunStatus, Stage
from ttdr.store import Store
from ui import worker

__all__ = ["ui_env"]  # the fixture, imported for pytest

HISTORY, MODELS, RUN = "pages/history.py", "pages/models.py", "pages/run.py"


def store() -> Store:
    return Store(Settings().db_path)


def start_from_the_form(at, *, iterations: int = 2, search: str = "local", docs: str = ""):
    at.text_area(key="question").input(QUESTION)
    at.radio(key="search").set_value(search)
    at.text_area(key="docs").input(docs or str(CORPUS))
    at.number_input(key="iterations").set_value(iterations)
    at.multiselect(key="evolve").set_value([])  # self-evolution multiplies a run's time
    return at.button(key="start").click().run()


# -- first launch and empty states ---------------------------------------------------------


def test_first_launch_welcomes_and_every_page_has_an_empty_state(ui_env) -> None:
    at = open_app()
    assert "Welcome to ttdr" in page_text(at)
    assert not at.button(key="start").disabled

    history = open_app(HISTORY)
    assert "No research yet" in page_text(history)

    run_page = open_app(RUN)
    assert "No run is open" in page_text(run_page)

    missing = open_app(RUN, run="nope")
    assert "no run with id" in page_text(missing).lower()


def test_local_search_without_documents_warns_before_starting(ui_env) -> None:
    at = open_app()
    at.radio(key="search").set_value("local").run()
    assert "index is empty" in page_text(at)


def test_an_empty_question_is_refused_on_the_form(ui_env) -> None:
    at = open_app()
    at.button(key="start").click().run()
    assert "question is empty" in page_text(at)
    assert Researcher(settings=Settings()).history() == []


# -- a live run, found again from the store ------------------------------------------------


def test_start_runs_in_the_background_and_the_run_page_follows_it_to_the_report(ui_env) -> None:
    at = start_from_the_form(open_app())
    run_id = run_param(at)
    status = store().get_run(run_id).status
    assert status in (RunStatus.running, RunStatus.done)
    if status is RunStatus.running:  # the page did not wait for the run
        assert at.button(key="stop") is not None

    assert worker.wait_for(run_id, 60)
    at.run()
    assert not at.exception, at.exception
    run = store().get_run(run_id)
    assert run.status is RunStatus.done and run.report is not None
    labels = [unescaped(s.label) for s in at.status]
    assert any(label.startswith("**Plan**") for label in labels)
    assert any(label.startswith("**Final report**") for label in labels)
    assert all(s.state == "complete" for s in at.status)
    text = page_text(at)
    assert "## References" in text and "Why the sea has tides" in text
    assert [b.label for b in at.get("download_button")] == [
        "Markdown", "HTML page", "PDF", "Word", "JSON"
    ]  # fmt: skip
    slider = at.select_slider(key=f"timeline-{run_id}")
    assert slider.options == [f"R{d.iteration}" for d in run.drafts_list]
    assert slider.value == len(run.drafts_list) - 1  # follows the newest version

    # Another session (another tab) sees the same run from the store alone.
    other = open_app(RUN, run=run_id)
    assert len(other.status) == len(at.status)
    assert "Why the sea has tides" in page_text(other)


class GatedResearcher(Researcher):
    """Holds its run after R0 until the test has pressed Stop: a tiny run is over in a second,
    faster than a click could land, and the fixture corpus ends a run early anyway."""

    at_r0 = threading.Event()
    release = threading.Event()

    def stream(self, question, *, stop=None):
        for run_event in super().stream(question, stop=stop):
            yield run_event
            if run_event.stage is Stage.draft and run_event.kind is EventKind.finished:
                self.at_r0.set()
                self.release.wait(60)


def test_stop_interrupts_the_run_and_resume_finishes_it(ui_env, monkeypatch) -> None:
    monkeypatch.setattr(worker, "Researcher", GatedResearcher)
    GatedResearcher.at_r0.clear()
    GatedResearcher.release.clear()
    at = start_from_the_form(open_app(), iterations=3)
    run_id = run_param(at)
    try:
        assert GatedResearcher.at_r0.wait(60)
        at.run()
        at.button(key="stop").click().run()
    finally:
        GatedResearcher.release.set()
    assert worker.wait_for(run_id, 60)
    at.run()
    db = store()
    run = db.get_run(run_id)
    assert run.status is RunStatus.interrupted and run.drafts >= 1 and run.report is None
    text = page_text(at)
    assert "interrupted" in text and "drafts are kept" in text
    assert at.tabs[0].label == "Current draft"
    assert "R0, the first draft" in text or "against R0" in text  # the timeline

    at.button(key="resume").click().run()
    assert run_param(at) == run_id
    assert worker.wait_for(run_id, 120)
    at.run()
    resumed = db.get_run(run_id)
    assert resumed.status is RunStatus.done and resumed.report is not None
    # The step in flight when it stopped is redone (its draft replaced); the ones before stay.
    assert resumed.drafts_list[: run.drafts - 1] == run.drafts_list[:-1]
    assert [d.iteration for d in resumed.drafts_list] == list(range(len(resumed.drafts_list)))


def test_a_running_run_of_another_process_is_followed_from_the_store(ui_env) -> None:
    db = store()
    run_id = stored_run(db, status=RunStatus.running, drafts=DRAFT_SO_FAR)
    at = open_app(RUN, run=run_id)
    text = page_text(at)
    assert "Researching" in text and "not running in this UI" in text
    assert at.get("download_button") == [] or len(at.get("download_button")) == 0
    assert at.select_slider(key=f"timeline-{run_id}").value == 1
    # Every page's sidebar links to the runs in progress (AppTest keeps the sidebar of the
    # first page only, so it is checked there).
    sidebar = [link.label for link in open_app().sidebar.get("page_link")]
    assert any("Why does the ocean" in unescaped(label) for label in sidebar)

    from ttdr.models import DraftVersion

    db.add_draft(run_id, DraftVersion(iteration=2, text=DRAFT_SO_FAR[-1] + " More."))
    at.run()  # what the one-second refresh does
    slider = at.select_slider(key=f"timeline-{run_id}")
    assert slider.options == ["R0", "R1", "R2"] and slider.value == 2


def test_a_run_whose_process_was_killed_is_shown_interrupted_and_can_resume(ui_env) -> None:
    db = store()
    run_id = stored_run(db, status=RunStatus.running, drafts=DRAFT_SO_FAR, report=False)
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a process that ended without marking the run, as kill -9 leaves it
    with sqlite3.connect(Settings().db_path) as conn:
        owner = f"{socket.gethostname()}:{gone.pid}:"
        conn.execute("UPDATE runs SET owner = ? WHERE id = ?", (owner, run_id))
    at = open_app(RUN, run=run_id)
    text = page_text(at)
    assert "interrupted" in text and f"ttdr research --resume {run_id}" in unescaped(text)
    assert not at.button(key="resume").disabled
    assert at.select_slider(key=f"timeline-{run_id}").options == ["R0", "R1"]  # drafts kept


DRAFT_SO_FAR = ["## Causes\n\nThe Moon.", "## Causes\n\nThe Moon and the Sun [1]."]


# -- a finished run: timeline, sources, safety ---------------------------------------------


def test_the_timeline_highlights_what_each_step_changed(ui_env) -> None:
    run_id = stored_run(store())
    at = open_app(RUN, run=run_id)
    at.select_slider(key=f"timeline-{run_id}").set_value(1).run()
    diff = [m.value for m in at.markdown if ":green-background[" in m.value]
    assert any(":red-background[~~pulls~~]:green-background[and the Sun pull]" in m for m in diff)
    assert "sections revised: Causes" in page_text(at)

    at.select_slider(key=f"timeline-{run_id}").set_value(0).run()
    assert "R0, the first draft" in page_text(at)


def test_the_sources_panel_says_who_cites_each_source_and_what_was_skipped(ui_env) -> None:
    run_id = stored_run(store())
    text = page_text(open_app(RUN, run=run_id))
    assert "[Why the sea has tides](<https://example.org/tides>)" in text
    assert "cited in the report as [1]" in text and "used by the answers of step 1, 2" in text
    assert "file:///docs/spring.md" in text and "cited in the report as [2]" in text
    assert "https://blocked.example/page" in text and "robots.txt disallows it" in text
    assert "Web search failed; searched the local index instead" in text


def test_nothing_from_a_model_or_a_page_is_rendered_as_markup(ui_env) -> None:
    attack = "<script>alert(1)</script> <img src=x onerror=alert(2)> ![p](https://t.example/x.png)"
    drafts = [f"## Causes\n\n{attack}", f"## Causes\n\n{attack} :red[styled] $x^2$"]
    run_id = stored_run(
        store(), question=f"Tides {attack}", drafts=drafts, source_title=f"Title {attack}"
    )
    at = open_app(RUN, run=run_id)
    at.select_slider(key=f"timeline-{run_id}").set_value(1).run()
    elements = [*at.markdown, *at.caption, *at.title]
    assert all(not getattr(e.proto, "allow_html", False) for e in elements)
    for element in elements:
        value = element.value
        assert not re.search(r"(?<!\\)<(script|img)", value)
        assert "![" not in value and ":red[" not in value
        assert not re.search(r"(?<!\\)\$", value)
    assert "alert(1)" in page_text(at)  # shown as text, not dropped


def test_a_failed_run_shows_its_error_with_a_hint_and_keeps_its_drafts(ui_env) -> None:
    error = "RetrievalUnavailableError: web search failed: network unreachable"
    run_id = stored_run(store(), status=RunStatus.failed, error=error)
    at = open_app(RUN, run=run_id)
    text = page_text(at)
    assert "This run failed" in text and "network unreachable" in text
    assert "Local documents only" in text  # the hint
    assert "Current draft" in [t.label for t in at.tabs]
    assert "spring tides at full moon" in text
    assert len(at.get("download_button")) == 5  # md, html, pdf, docx, json
    assert not at.button(key="resume").disabled


def test_a_damaged_history_is_one_clear_message_on_every_page_and_a_reload_recovers(
    ui_env,
) -> None:
    db_path = Settings().db_path
    db_path.parent.mkdir(parents=True, exist_ok=True)
    db_path.write_bytes(b"not an SQLite database\n" * 300)

    for page, run in ((None, None), (HISTORY, None), (RUN, "0123abcd")):  # they read it
        at = open_app(page, run=run)  # fails on any uncaught exception
        (error,) = at.error
        assert str(db_path) in unescaped(error.value) and "mv " in unescaped(error.value)
    assert db_path.read_bytes() == b"not an SQLite database\n" * 300  # left as it was

    db_path.rename(db_path.with_name("ttdr.db.broken"))  # what the message says to do
    assert "Welcome to ttdr" in page_text(open_app())


def test_offline_web_search_ends_the_run_with_an_explanation(ui_env) -> None:
    at = start_from_the_form(open_app(), search="web", docs="")
    run_id = run_param(at)
    assert worker.wait_for(run_id, 60)
    at.run()
    run = store().get_run(run_id)
    assert run.status is RunStatus.failed and "RetrievalUnavailableError" in (run.error or "")
    assert "This run failed" in page_text(at) and "Local documents only" in page_text(at)


# -- history -------------------------------------------------------------------------------


def test_history_searches_and_filters_by_status_and_date(ui_env) -> None:
    db = store()
    stored_run(db, question="How do tides work?")
    stored_run(db, question="What is BM25?", status=RunStatus.failed, error="ValueError: x")
    at = open_app(HISTORY)
    assert "2 of 2 runs" in page_text(at)

    at.text_input(key="history-search").input("bm25").run()
    assert "1 of 2 runs" in page_text(at) and "What is BM25?" in page_text(at)
    at.text_input(key="history-search").input("").run()

    at.multiselect(key="history-status").set_value([RunStatus.done]).run()
    assert "1 of 2 runs" in page_text(at) and "How do tides work?" in page_text(at)
    at.multiselect(key="history-status").set_value([]).run()

    today = date.today()
    at.date_input(key="history-dates").set_value((today - timedelta(1), today + timedelta(1)))
    assert "2 of 2 runs" in page_text(at.run())
    at.date_input(key="history-dates").set_value((today - timedelta(9), today - timedelta(8)))
    at.run()
    assert "0 of 2 runs" in page_text(at) and "No run matches" in page_text(at)


def test_history_opens_a_report_and_deletes_only_after_confirmation(ui_env) -> None:
    db = store()
    run_id = stored_run(db)
    at = open_app(HISTORY)
    at.button(key=f"open-{run_id}").click().run()
    assert run_param(at) == run_id
    at.switch_page(RUN).run()  # AppTest reruns the page it was switched to, not the app's
    assert [t.label for t in at.tabs] == ["Report", "Timeline", "Sources", "Q/A", "Plan & stats"]
    text = page_text(at)
    assert "What about causes?" in text and "**Causes** — What causes tides?" in text

    at.button(key="delete").click().run()
    assert "cannot be undone" in page_text(at)
    at.button(key="delete-cancel").click().run()
    assert db.get_run(run_id).id == run_id

    at.button(key="delete").click().run()
    at.button(key="delete-confirm").click().run()
    assert db.list_runs() == []
    assert "Deleted “Why does the ocean have tides?”" in page_text(at)  # back on History
    at.switch_page(HISTORY).run()
    assert "No research yet" in page_text(at)


# -- models --------------------------------------------------------------------------------


def test_the_models_page_shows_the_active_model_family_device_and_cache(ui_env) -> None:
    text = page_text(open_app(MODELS))
    settings = Settings()
    assert settings.model in text and "— :material/check_circle: downloaded" in text
    assert "**Family:** llama" in text and "**Device:** cpu" in text
    assert f"**Model cache:** {settings.model_cache}" in text
    presets = open_app(MODELS).table[0].value
    assert "smollm2\\-135m \\(default\\)" in list(presets["name"])


def test_a_model_not_downloaded_is_announced_and_one_that_cannot_be_had_blocks_start(
    ui_env, monkeypatch
) -> None:
    monkeypatch.setenv("TTDR_MODEL", "smollm2-135m")
    at = open_app()
    assert "Not downloaded yet" in page_text(at) and not at.button(key="start").disabled
    assert "not downloaded" in page_text(open_app(MODELS))

    at.selectbox(key="model").set_value("llada-8b-instruct").run()
    assert "place the checkpoint folder" in page_text(at)
    assert at.button(key="start").disabled

    at.selectbox(key="model").set_value(Settings().model).run()
    assert not at.button(key="start").disabled
    at.text_input(key="judge_model").input("/no/such/judge").run()
    assert "nor an existing checkpoint folder" in page_text(at)
    assert at.button(key="start").disabled  # a judge that cannot load never starts a run


def test_a_run_waiting_for_review_shows_its_plan_as_a_form_and_starts_with_the_edit(
    ui_env,
) -> None:
    at = open_app()
    at.toggle(key="review_plan").set_value(True)
    at = start_from_the_form(at, iterations=1)
    run_id = run_param(at)
    assert worker.wait_for(run_id, 120)
    at.run()
    assert not at.exception, at.exception
    waiting = store().get_run(run_id)
    assert waiting.status is RunStatus.review and waiting.drafts == 0
    text = page_text(at)
    assert "waiting for review" in text and "The plan waits for your review" in text
    assert [h.value for h in at.subheader] == ["Review the plan"]
    assert at.text_input(key=f"plan-title-{run_id}-0").value == waiting.plan.sections[0].title
    assert all(s.state == "complete" for s in at.status)  # waiting is not an error

    for number in range(1, len(waiting.plan.sections)):  # keep only the first section
        at.checkbox(key=f"plan-keep-{run_id}-{number}").uncheck()
    at.text_input(key=f"plan-title-{run_id}-0").input("Gravity of the Moon")
    added = len(waiting.plan.sections)  # the first empty row
    at.text_input(key=f"plan-title-{run_id}-{added}").input("Spring and neap tides")
    at.button(key="plan-start").click().run()
    assert worker.wait_for(run_id, 120)
    at.run()
    run = store().get_run(run_id)
    assert run.status is RunStatus.done, run.error
    assert run.plan.titles() == ["Gravity of the Moon", "Spring and neap tides"]
    assert run.plan.sections[1].question == "Spring and neap tides"  # the title stands for it
    headings = re.findall(r"^## (.+)$", run.report.markdown, flags=re.MULTILINE)
    assert [h for h in headings if h not in ("Summary", "References")] == run.plan.titles()
