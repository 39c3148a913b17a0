"""The denoising timeline: a slider over R0..RT and what each step changed."""

from __future__ import annotations

import streamlit as st

from ttdr.models import DraftVersion
from ui.safe_markdown import demote_headings, escape_markdown
from ui.word_diff import Change, changes_markdown, summarize, word_changes


def render_timeline(run_id: str, drafts: list[DraftVersion]) -> None:
    if not drafts:
        st.info("No draft yet: R0 appears once the plan is written.")
        return
    chosen = _choose_version(run_id, drafts)
    draft = drafts[chosen]
    if chosen == 0:
        st.caption(f"R0, the first draft from the model's own knowledge ({_words(draft)} words).")
        body = changes_markdown([Change("same", draft.text)])
    else:
        previous = drafts[chosen - 1]
        changes = word_changes(previous.text, draft.text)
        summary = summarize(changes)
        sections = ", ".join(escape_markdown(s) for s in draft.changed_sections) or "none"
        st.markdown(
            f"R{draft.iteration} against R{previous.iteration}: "
            f":green-background[+{summary.added_words} words] "
            f":red-background[−{summary.removed_words} words] · sections revised: {sections}"
        )
        body = changes_markdown(changes)
    with st.container(border=True):
        st.markdown(demote_headings(body))


def _choose_version(run_id: str, drafts: list[DraftVersion]) -> int:
    """The slider follows the newest version until the reader moves it back."""
    newest = len(drafts) - 1
    key, seen_key = f"timeline-{run_id}", f"timeline-{run_id}-newest"
    if key not in st.session_state or st.session_state[key] == st.session_state.get(seen_key):
        st.session_state[key] = newest
    st.session_state[seen_key] = newest
    if newest == 0:
        st.caption("Only R0 so far; each denoising step adds a version here.")
        return 0
    return st.select_slider(
        "Draft version",
        options=list(range(len(drafts))),
        format_func=lambda i: f"R{drafts[i].iteration}",
        key=key,
    )


def _words(draft: DraftVersion) -> int:
    return len(draft.text.split())
