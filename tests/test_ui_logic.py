"""The UI's logic without Streamlit: escaping, the word diff, stage panels, history filters,
model checks, the worker and the launch command."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from datetime import UTC, date, datetime

import pytest

from ttdr.api import check_model
from ttdr.models import EventKind, RunEvent, RunStatus, RunSummary, Stage
from ui.history_filter import filter_runs
from ui.launch import streamlit_command
from ui.safe_markdown import escape_markdown, link_markdown, one_line, safe_markdown
from ui.source_uses import skipped_sources
from ui.stages import current_stage, run_warnings, stage_panels
from ui.word_diff import Change, changes_markdown, summarize, word_changes
from ui.worker import RunWorker, request_stop, wait_for

# -- escaping --------------------------------------------------------------------------------


def test_escaped_text_has_no_active_markdown_left() -> None:
    text = "<b>x</b> ![i](http://t/x.png) [l](javascript:alert(1)) :red[c] $m$ # h *e* `c`"
    escaped = escape_markdown(text)
    unescaped_marks = re.sub(r"\\.", "", escaped)  # what is left outside the escapes
    assert not set("<>![]()$*`:#\\") & set(unescaped_marks)
    assert re.sub(r"\\(.)", r"\1", escaped) == text


def test_safe_markdown_keeps_structure_and_disarms_html_images_links_and_directives() -> None:
    text = (
        "## Title\n\n- item **bold**\n\n<script>alert(1)</script> ![x](https://t.example/p.png)"
        " [ok](https://example.org) [bad](javascript:alert(1)) :red[paint] $x$"
    )
    safe = safe_markdown(text)
    assert safe.startswith("## Title\n\n- item **bold**")
    assert "&lt;script&gt;" in safe and "<script" not in safe
    assert "!\\[x]" in safe and "[ok](https://example.org)" in safe
    assert "[bad]\\(javascript:" in safe and ":red\\[paint]" in safe and "\\$x\\$" in safe


@pytest.mark.parametrize(
    "payload",
    [
        "Read [this][r].\n\n[r]: javascript:alert(1)",
        "Read [this][r].\n\n   [r]: <javascript:alert(1)>",
        "- Read [this][r].\n- [r]: JavaScript:alert(1)",
        "[this]\n\n[this]: data:text/html;base64,PHNjcmlwdD4=",
        "[a](javascript:alert(1)) [b]( <vbscript:x> )",
    ],
)
def test_safe_markdown_leaves_no_script_link_for_a_markdown_renderer(payload: str) -> None:
    from markdown_it import MarkdownIt  # CommonMark, as the browser's renderer reads it

    rendered = MarkdownIt("commonmark").render(safe_markdown(payload))
    targets = re.findall(r'href="([^"]*)"', rendered)
    assert all(t.startswith(("http:", "https:", "mailto:")) for t in targets), rendered
    # The unsafe definition stays in the text, where a reader can see it.
    assert "alert" in rendered or "base64" in rendered or "vbscript" in rendered


def test_safe_reference_definitions_still_link() -> None:
    from markdown_it import MarkdownIt

    rendered = MarkdownIt("commonmark").render(
        safe_markdown("See [the docs][d].\n\n[d]: https://example.org/docs")
    )
    assert 'href="https://example.org/docs"' in rendered


def test_links_only_for_web_addresses() -> None:
    assert link_markdown("A (b)", "https://e.org/a b(c)") == (
        "[A \\(b\\)](<https://e.org/a%20b%28c%29>)"
    )
    assert link_markdown("Doc", "file:///d/x.md") == "Doc · `file:///d/x.md`"
    assert "javascript" not in link_markdown("x", "javascript:alert(1)").split("`")[0]


def test_one_line_collapses_and_cuts() -> None:
    assert one_line("a\n\n b  c", 10) == "a b c"
    assert one_line("x" * 20, 10) == "x" * 9 + "…"


# -- the word diff ---------------------------------------------------------------------------


def test_word_changes_reconstruct_both_versions() -> None:
    old, new = "The Moon pulls the water.", "The Moon and the Sun pull the water [1]."
    changes = word_changes(old, new)
    assert "".join(c.text for c in changes if c.kind != "removed") == new
    assert "".join(c.text for c in changes if c.kind != "added") == old
    assert summarize(changes).removed_words == 1


def test_changes_markdown_highlights_escaped_words_and_keeps_headings_and_lines() -> None:
    changes = word_changes("## A\n\nx <b>\ny", "## A\n\nx <i> :red[z]\ny")
    markdown = changes_markdown(changes)
    lines = markdown.split("\n")
    assert lines[0] == "## A" and lines[1] == ""
    assert ":red-background[~~b~~]" in markdown and ":green-background[i]" in markdown
    assert "<" not in markdown.replace("\\<", "") and ":red[" not in markdown
    assert lines[-1] == "y  "  # a hard line break keeps the draft's lines


def test_whitespace_only_changes_are_not_wrapped() -> None:
    markdown = changes_markdown([Change("same", "a"), Change("added", "  "), Change("same", "b")])
    assert markdown == "a  b  "


# -- stage panels ----------------------------------------------------------------------------


def event(stage: Stage, kind: EventKind = EventKind.progress, message: str = "m", **data):
    return RunEvent(run_id="r", stage=stage, kind=kind, message=message, data=data)


def test_panels_follow_the_run_and_mark_where_it_stopped() -> None:
    events = [
        event(Stage.run, EventKind.started),
        event(Stage.plan, EventKind.finished),
        event(Stage.draft, EventKind.started),
    ]
    states = {p.stage: p.state for p in stage_panels(events, RunStatus.running)}
    assert states[Stage.plan] == "complete" and states[Stage.draft] == "running"
    assert states[Stage.report] == "pending"

    failed = [*events, event(Stage.run, EventKind.error, "Failed: boom")]
    assert current_stage(failed) is Stage.draft
    states = {p.stage: p.state for p in stage_panels(failed, RunStatus.failed)}
    assert states[Stage.draft] == "error" and states[Stage.run] == "complete"
    order = [p.stage for p in stage_panels(failed, RunStatus.failed)]
    assert order[:3] == [Stage.run, Stage.plan, Stage.draft]


def test_skipped_pages_go_to_the_sources_panel_and_other_warnings_to_the_banner() -> None:
    skipped = dict(url="https://x.example/a", reason="too large", category="size")
    events = [
        event(Stage.search, EventKind.warning, "Skipped https://x.example/a: too large", **skipped),
        event(Stage.search, EventKind.warning, "Skipped again", **skipped),
        event(Stage.search, EventKind.warning, "Web search failed; using the local index"),
    ]
    assert [(s.url, s.reason, s.category) for s in skipped_sources(events)] == [
        ("https://x.example/a", "too large", "size")
    ]
    assert run_warnings(events) == ["Web search failed; using the local index"]


# -- history filters -------------------------------------------------------------------------


def summary(question: str, status: RunStatus, day: int) -> RunSummary:
    created = datetime(2026, 1, day, 12, tzinfo=UTC)
    return RunSummary(
        id=f"id{day}", question=question, status=status, created_at=created, model="m"
    )


def test_filters_combine_words_statuses_and_dates() -> None:
    runs = [
        summary("How do tides work?", RunStatus.done, 1),
        summary("What is BM25 ranking?", RunStatus.failed, 5),
        summary("Tides and the Moon", RunStatus.interrupted, 9),
    ]
    assert [r.id for r in filter_runs(runs, "tides")] == ["id1", "id9"]
    assert [r.id for r in filter_runs(runs, "TIDES moon")] == ["id9"]
    assert [r.id for r in filter_runs(runs, "id5")] == ["id5"]
    assert [r.id for r in filter_runs(runs, statuses=[RunStatus.failed])] == ["id5"]
    assert [r.id for r in filter_runs(runs, dates=[date(2026, 1, 4), date(2026, 1, 9)])] == [
        "id5",
        "id9",
    ]
    assert [r.id for r in filter_runs(runs, dates=[date(2026, 1, 1)])] == ["id1"]


# -- models ----------------------------------------------------------------------------------


def test_model_checks_name_each_state(tmp_path, tiny_model) -> None:
    assert check_model("smollm2-135m", tmp_path).state == "will_download"
    missing = check_model("llada-8b-instruct", tmp_path)
    assert missing.state == "missing" and str(tmp_path) in missing.message
    assert check_model(str(tmp_path / "nowhere"), tmp_path).state == "invalid"
    ready = check_model(str(tiny_model), tmp_path)
    assert ready.state == "ready" and ready.family == "llama" and ready.runnable


# -- the worker ------------------------------------------------------------------------------


def test_a_worker_reports_the_run_id_and_stops_on_request() -> None:
    def events(stop: threading.Event):
        yield event(Stage.run, EventKind.started).model_copy(update={"run_id": "w1"})
        stop.wait(10)
        yield event(Stage.run).model_copy(update={"run_id": "w1"})

    worker = RunWorker(events, "test")
    assert worker.start() == "w1" and worker.is_alive()
    assert request_stop("w1") and wait_for("w1", 10) and not worker.is_alive()


def test_a_run_refused_before_it_starts_raises_its_error_to_the_page() -> None:
    def events(stop: threading.Event):
        raise ValueError("the question is empty")
        yield  # a generator, like Researcher.stream

    with pytest.raises(ValueError, match="question is empty"):
        RunWorker(events, "test").start()


# -- launching -------------------------------------------------------------------------------


def test_the_launch_command_serves_the_app_headless_on_the_given_address() -> None:
    command = streamlit_command(8765, "127.0.0.1")
    assert command[:4] == [sys.executable, "-m", "streamlit", "run"]
    assert command[4].endswith("ui/app.py")
    assert {"--server.port=8765", "--server.address=127.0.0.1", "--server.headless=true"} <= set(
        command
    )
    help_text = subprocess.run(
        [sys.executable, "-m", "ui.launch", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "--port" in help_text and "--address" in help_text
