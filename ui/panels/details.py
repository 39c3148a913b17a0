"""Q/A pairs, the plan and the generation statistics of a run."""

from __future__ import annotations

import streamlit as st

from ttdr.models import RunDetail
from ui.safe_markdown import escape_markdown, one_line, safe_markdown


def render_qa(run: RunDetail) -> None:
    if not run.qa_pairs:
        st.info("No question has been researched yet.")
    for qa in run.qa_pairs:
        cites = ", ".join(f"\\[{n}\\]" for n in qa.source_numbers) or "no source"
        title = f"Step {qa.iteration} · {escape_markdown(one_line(qa.question, 120))}"
        with st.expander(title, expanded=False):
            st.caption(f"Section: {escape_markdown(qa.section)} · cites {cites}")
            st.markdown(safe_markdown(qa.answer) if qa.answer else "*No answer: nothing found.*")


def render_details(run: RunDetail) -> None:
    if run.plan is not None:
        st.markdown("**Plan**")
        for number, section in enumerate(run.plan.sections, start=1):
            st.markdown(
                f"{number}\\. **{escape_markdown(section.title)}** — "
                f"{escape_markdown(section.question)}"
            )
    config = run.config
    st.markdown("**Settings**")
    st.caption(
        f"model {escape_markdown(config.model)} · search {config.search} · "
        f"{config.iterations} steps · {config.max_sections} sections at most · "
        f"{config.section_tokens} tokens per section · docs: "
        + (", ".join(escape_markdown(str(d)) for d in config.docs) or "none")
    )
    generation = run.stats.generation
    if generation:
        st.markdown("**Generation**")
        st.caption(
            f"{escape_markdown(run.stats.decoding or '')} on "
            f"{escape_markdown(run.stats.device or '')} · "
            f"{generation.tokens} tokens in {generation.forward_passes} "
            f"forward passes · {generation.tokens_per_second} tokens/s · "
            f"{run.stats.wall_s} s in all"
        )
