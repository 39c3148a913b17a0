"""What a user can do with a run: stop, resume, download, delete (after confirming)."""

from __future__ import annotations

from functools import partial

import streamlit as st

from ttdr.errors import TtdrError
from ttdr.export import BINARY_FORMATS, MEDIA_TYPES, export_bytes, export_run
from ttdr.models import RunDetail, RunStatus
from ui import icons, worker
from ui.navigation import HISTORY, open_run
from ui.reader import reader
from ui.safe_markdown import escape_markdown

LABELS = {"md": "Markdown", "html": "HTML page", "pdf": "PDF", "docx": "Word", "json": "JSON"}
DOWNLOADS = {fmt: MEDIA_TYPES[fmt] for fmt in LABELS}


def render_stop(run: RunDetail) -> None:
    if worker.worker_for(run.id) is None:
        st.caption(
            "This run is not running in this UI (it may be a `ttdr research` in a terminal): "
            "stop it there. This page follows it from the history."
        )
    elif st.button(
        "Stop", key="stop", icon=icons.STOP, help="Stop at the next step; the drafts are kept."
    ):
        worker.request_stop(run.id)
        st.toast("Stopping at the next step…")


def render_resume(run: RunDetail) -> None:
    if not worker.can_resume():
        st.button(
            "Resume",
            key="resume",
            icon=icons.RESUME,
            disabled=True,
            help="Resuming needs a ttdr with Researcher.stream_resume.",
        )
        return
    if st.button(
        "Resume", key="resume", icon=icons.RESUME, type="primary", help="Continue where it stopped."
    ):
        try:
            run_id = worker.resume_research(run.id, run.config)
        except TtdrError as exc:
            st.error(escape_markdown(str(exc)))
        else:
            open_run(run_id)


def render_downloads(run: RunDetail) -> None:
    """One button per export format. PDF and Word are laid out only when clicked (a deferred
    download), so a page that reruns every second while a run is live does not redo them."""
    for fmt, mime in DOWNLOADS.items():
        st.download_button(
            LABELS[fmt],
            icon=icons.DOWNLOAD,
            data=partial(export_bytes, run, fmt) if fmt in BINARY_FORMATS else export_run(run, fmt),
            file_name=f"ttdr-{run.id}.{fmt}",
            mime=mime,
            key=f"download-{fmt}",
            on_click="ignore",
        )


def render_delete(run: RunDetail) -> None:
    """The button; `render_delete_confirmation` asks before anything is deleted."""
    if st.button("Delete…", key="delete", icon=icons.DELETE):
        st.session_state["confirm-delete"] = run.id
        st.rerun()


def render_delete_confirmation(run: RunDetail) -> None:
    if st.session_state.get("confirm-delete") != run.id:
        return
    st.warning("Delete this run with its drafts, answers, sources and report? It cannot be undone.")
    row = st.container(horizontal=True)
    if row.button("Delete permanently", key="delete-confirm", type="primary"):
        del st.session_state["confirm-delete"]
        reader().delete_run(run.id)
        st.session_state["deleted"] = run.question
        st.switch_page(HISTORY)
    if row.button("Cancel", key="delete-cancel"):
        del st.session_state["confirm-delete"]
        st.rerun()


def can_delete(run: RunDetail) -> bool:
    return run.status is not RunStatus.running or worker.worker_for(run.id) is None
