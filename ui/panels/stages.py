"""One `st.status` box per workflow stage, with its messages."""

from __future__ import annotations

import streamlit as st

from ttdr.models import EventKind
from ui import icons
from ui.safe_markdown import escape_markdown, one_line
from ui.stages import StagePanel

KIND_ICONS = {EventKind.warning: icons.WARNING + " ", EventKind.error: icons.ERROR + " "}


def render_stages(panels: list[StagePanel], live: bool) -> None:
    pending = [p.title for p in panels if p.state == "pending"]
    for panel in panels:
        if panel.state == "pending":
            continue
        label = f"**{panel.title}** — {escape_markdown(one_line(panel.latest, 90))}"
        if panel.warnings:
            label += f" · {panel.warnings} {icons.WARNING}"
        with st.status(label, state=panel.state, expanded=panel.state != "complete"):
            for run_event in panel.events[-40:]:
                icon = KIND_ICONS.get(run_event.kind, "")
                st.markdown(icon + escape_markdown(panel.line(run_event)))
    if pending:
        st.caption(("Not started yet: " if live else "Not reached: ") + ", ".join(pending))
