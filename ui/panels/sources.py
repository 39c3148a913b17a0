"""The sources panel: each retrieved source, where the run cites it, and what was skipped."""

from __future__ import annotations

import streamlit as st

from ttdr.models import RunDetail, RunEvent
from ui.safe_markdown import escape_markdown, link_markdown, one_line
from ui.source_uses import SourceUse, skipped_sources, source_uses


def render_sources(run: RunDetail, events: list[RunEvent]) -> None:
    uses = source_uses(run)
    if not uses:
        st.info("No source retrieved yet.")
    for use in uses:
        _render_use(use)
    skipped = skipped_sources(events)
    if skipped:
        st.markdown(f"**Skipped ({len(skipped)})**")
        for item in skipped:
            reason = escape_markdown(one_line(item.reason, 200))
            category = f" · {escape_markdown(item.category)}" if item.category else ""
            st.markdown(f"- `{item.url.replace('`', '')}` — {reason}{category}")


def _render_use(use: SourceUse) -> None:
    source = use.source
    with st.container(border=True):
        title = one_line(source.title or source.url, 140)
        st.markdown(f"**\\[{source.number}\\]** {link_markdown(title, source.url)}")
        cited = (
            "cited in the report as " + ", ".join(f"\\[{n}\\]" for n in use.report_citations)
            if use.report_citations
            else "not cited in the report"
        )
        steps = (
            "used by the answers of step " + ", ".join(map(str, use.answer_steps))
            if use.answer_steps
            else "no answer cites it"
        )
        st.caption(f"{source.kind} · {cited} · {steps}")
        if source.excerpt:
            with st.expander("Passages used"):
                st.markdown(escape_markdown(source.excerpt[:3000]))
