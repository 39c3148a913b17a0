"""The app's pages and the one way to open a run's page."""

from __future__ import annotations

import streamlit as st

from ui import icons

NEW_RESEARCH = "pages/new_research.py"
RUN = "pages/run.py"
HISTORY = "pages/history.py"
MODELS = "pages/models.py"


def pages() -> list[st.Page]:
    return [
        st.Page(
            NEW_RESEARCH,
            title="New research",
            icon=icons.NEW_RESEARCH,
            url_path="new",
            default=True,
        ),
        st.Page(RUN, title="Run", icon=icons.RUN, url_path="run"),
        st.Page(HISTORY, title="History", icon=icons.HISTORY, url_path="history"),
        st.Page(MODELS, title="Models", icon=icons.MODELS, url_path="models"),
    ]


def open_run(run_id: str) -> None:
    """Go to a run's page; the id travels in the address, so the page can be bookmarked."""
    st.switch_page(RUN, query_params={"run": run_id})
