"""History: every saved run, searchable and filtered by status and date; open one to read it."""

from __future__ import annotations

import streamlit as st

from ttdr.models import RunStatus, RunSummary
from ui import icons
from ui.history_filter import filter_runs
from ui.navigation import NEW_RESEARCH, open_run
from ui.reader import reader
from ui.safe_markdown import escape_markdown, one_line

SHOWN = 100
COLORS = {
    RunStatus.running: "blue",
    RunStatus.done: "green",
    RunStatus.failed: "red",
    RunStatus.interrupted: "orange",
    RunStatus.review: "violet",
}

st.title("History")
deleted = st.session_state.pop("deleted", None)
if deleted:
    st.success(f"Deleted “{escape_markdown(one_line(deleted, 120))}”.")

runs = reader().history(limit=10_000)
if not runs:
    st.info(
        "No research yet. Runs you start appear here with their drafts, sources and report, "
        "whether they finished, failed or were stopped."
    )
    st.page_link(NEW_RESEARCH, label="Start your first research", icon=icons.NEW_RESEARCH)
    st.stop()

search_column, status_column, date_column = st.columns([3, 2, 2])
text = search_column.text_input("Search", key="history-search", placeholder="words or run id")
statuses = status_column.multiselect(
    "Status", list(RunStatus), format_func=str, key="history-status"
)
dates = date_column.date_input("Started between", value=(), key="history-dates")
shown = filter_runs(runs, text, statuses, dates)
more = f"; the newest {SHOWN} shown" if len(shown) > SHOWN else ""
st.caption(f"{len(shown)} of {len(runs)} runs{more}")
if not shown:
    st.info("No run matches these filters.")


def row(run: RunSummary) -> None:
    with st.container(border=True):
        about, status, action = st.columns([6, 2, 1], vertical_alignment="center")
        about.markdown(f"**{escape_markdown(one_line(run.question, 160))}**")
        details = (
            f"{run.created_at:%Y-%m-%d %H:%M} UTC · {run.id} · {escape_markdown(run.model)} · "
            f"{run.drafts} drafts · {run.sources} sources"
        )
        if run.error:
            details += f" · {escape_markdown(one_line(run.error, 100))}"
        about.caption(details)
        status.badge(run.status.value, color=COLORS[run.status])
        if action.button("Open", key=f"open-{run.id}"):
            open_run(run.id)


for run in shown[:SHOWN]:
    row(run)
