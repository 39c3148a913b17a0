"""One run, live or finished, read from the store by the id in the address (`?run=ID`).

While the run is running, its body refreshes every second from the store; the page can be
left and opened again, in this tab or another, without touching the run.
"""

from __future__ import annotations

import streamlit as st

from ttdr.errors import RunNotFoundError
from ttdr.models import RunDetail, RunStatus
from ui import icons
from ui.error_hints import hint_for
from ui.navigation import HISTORY, NEW_RESEARCH
from ui.panels.actions import (
    can_delete,
    render_delete,
    render_delete_confirmation,
    render_downloads,
    render_resume,
    render_stop,
)
from ui.panels.details import render_details, render_qa
from ui.panels.document import render_document
from ui.panels.plan_review import render_plan_review
from ui.panels.sources import render_sources
from ui.panels.stages import render_stages
from ui.panels.timeline import render_timeline
from ui.reader import reader
from ui.safe_markdown import escape_markdown, one_line
from ui.stages import run_warnings, stage_panels

BADGES = {
    RunStatus.running: ("running", "blue"),
    RunStatus.done: ("done", "green"),
    RunStatus.failed: ("failed", "red"),
    RunStatus.interrupted: ("interrupted", "orange"),
    RunStatus.review: ("waiting for review", "violet"),
}
REFRESH_S = 1.0


def no_run_selected() -> None:
    st.title("Run")
    st.info("No run is open. Start one, or open a past run from the history.")
    st.page_link(NEW_RESEARCH, label="New research", icon=icons.NEW_RESEARCH)
    st.page_link(HISTORY, label="History", icon=icons.HISTORY)


def header(run: RunDetail) -> None:
    st.title(escape_markdown(one_line(run.question, 200)))
    label, color = BADGES[run.status]
    st.badge(label, color=color)
    st.caption(
        f"Run {run.id} · started {run.created_at:%Y-%m-%d %H:%M} UTC · model "
        f"{escape_markdown(run.model)} · {run.config.iterations} denoising steps · "
        f"search {run.config.search}"
    )


def status_banner(run: RunDetail) -> None:
    if run.status is RunStatus.running:
        st.info(
            "Researching. You can leave this page: the run goes on, and History brings you "
            "back to it."
        )
    elif run.status is RunStatus.failed:
        st.error(f"This run failed: {escape_markdown(run.error or 'no error was recorded')}")
        hint = hint_for(run.error)
        if hint:
            st.markdown(hint)
        st.caption("Everything it wrote before failing is kept below; Resume retries from there.")
    elif run.status is RunStatus.interrupted:
        st.warning(
            f"This run was interrupted ({escape_markdown(run.error or 'stopped')}); its drafts "
            "are kept. Resume continues it from where it stopped."
        )
    elif run.status is RunStatus.review:
        st.info(
            "The plan waits for your review: edit it below and start the research, or reject "
            f"it. From a terminal: `ttdr research --resume {run.id}`."
        )
        render_plan_review(run)
    with st.container(horizontal=True, vertical_alignment="center"):
        if run.status is RunStatus.running:
            render_stop(run)
        if run.status in (RunStatus.interrupted, RunStatus.failed):
            render_resume(run)
        if run.status is not RunStatus.running:
            render_downloads(run)
        if can_delete(run):
            render_delete(run)
    render_delete_confirmation(run)


def body(run_id: str, live: bool) -> None:
    try:
        run = reader().get_run(run_id)
    except RunNotFoundError:  # deleted from another tab while this one was watching
        st.rerun()
    if live and run.status is not RunStatus.running:
        st.rerun()  # finished: redraw the whole page once, without the timer
    events = reader().events(run_id)
    warnings = run_warnings(events)
    if warnings:
        label = f"{len(warnings)} warning{'s' if len(warnings) > 1 else ''}"
        with st.expander(label, expanded=live, icon=icons.WARNING):
            for message in warnings:
                st.markdown("- " + escape_markdown(one_line(message, 300)))
    stages_column, content = st.columns([2, 3])
    with stages_column:
        render_stages(stage_panels(events, run.status), live)
    with content:
        first = "Report" if run.report else "Current draft"
        tabs = st.tabs([first, "Timeline", "Sources", "Q/A", "Plan & stats"])
        with tabs[0]:
            if run.report:
                render_document(run.report.markdown)
            elif run.drafts_list:
                st.caption(f"R{run.drafts_list[-1].iteration}, the newest draft.")
                render_document(run.drafts_list[-1].text)
            else:
                st.info("No draft yet: the plan comes first.")
        with tabs[1]:
            render_timeline(run.id, run.drafts_list)
        with tabs[2]:
            render_sources(run, events)
        with tabs[3]:
            render_qa(run)
        with tabs[4]:
            render_details(run)


run_id = st.query_params.get("run")
if not run_id:
    no_run_selected()
    st.stop()
try:
    run = reader().get_run(run_id)
except RunNotFoundError as exc:
    st.title("Run")
    st.error(f"{escape_markdown(str(exc))} It may have been deleted.")
    st.page_link(HISTORY, label="History", icon=icons.HISTORY)
    st.stop()

header(run)
status_banner(run)
live = run.status is RunStatus.running
st.fragment(body, run_every=REFRESH_S if live else None)(run.id, live)
