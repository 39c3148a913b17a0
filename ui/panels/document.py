"""A draft or report, rendered as Markdown with everything active disarmed."""

from __future__ import annotations

import streamlit as st

from ui.safe_markdown import demote_headings, safe_markdown


def render_document(text: str) -> None:
    with st.container(border=True):
        st.markdown(demote_headings(safe_markdown(text)))
