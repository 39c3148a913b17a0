"""The plan of a run waiting for review, as a form: each section's title and key question can
be changed, a section dropped or one added, then the research starts with that plan.

Plain text inputs rather than a data grid: each field keeps its own key, so what a person
typed survives the page's reruns, and the form reads the same in every browser.
"""

from __future__ import annotations

import streamlit as st

from ttdr.errors import TtdrError
from ttdr.models import Plan, PlanSection, RunDetail
from ui import icons, worker
from ui.navigation import open_run
from ui.reader import reader
from ui.safe_markdown import escape_markdown

NEW_SECTIONS = 2  # empty rows offered for sections to add


def render_plan_review(run: RunDetail) -> None:
    if run.plan is None:  # a review status always comes with its plan; a damaged row may not
        st.error("This run waits for review but its plan is missing; delete it and start again.")
        return
    st.subheader("Review the plan")
    st.caption(
        "Change a title or key question, untick a section to drop it, or fill an empty row "
        "to add one. The report's sections are these, in this order."
    )
    rows = [(s.title, s.question) for s in run.plan.sections] + [("", "")] * NEW_SECTIONS
    sections = []
    for number, (title, question) in enumerate(rows):
        keep_column, title_column, question_column = st.columns([1, 4, 8])
        keep = keep_column.checkbox(
            "Keep", value=True, key=f"plan-keep-{run.id}-{number}", disabled=not title
        )
        typed_title = title_column.text_input(
            "Title", value=title, key=f"plan-title-{run.id}-{number}"
        )
        typed_question = question_column.text_input(
            "Key question", value=question, key=f"plan-question-{run.id}-{number}"
        )
        if keep and typed_title.strip():
            clean_title = " ".join(typed_title.split())
            clean_question = " ".join(typed_question.split()) or clean_title
            sections.append(PlanSection(title=clean_title, question=clean_question))
    row = st.container(horizontal=True)
    if row.button("Start research", key="plan-start", type="primary", icon=icons.RESUME):
        if not sections:
            st.error("A plan needs at least one section: keep or add one.")
            return
        edited = Plan(sections=sections)
        try:
            worker.resume_research(run.id, run.config, plan=None if edited == run.plan else edited)
        except TtdrError as exc:
            st.error(escape_markdown(str(exc)))
        else:
            open_run(run.id)
    if row.button("Reject plan", key="plan-reject", help="Stop here; the run is kept."):
        try:
            reader().reject_plan(run.id)
        except TtdrError as exc:
            st.error(escape_markdown(str(exc)))
        else:
            st.rerun()
