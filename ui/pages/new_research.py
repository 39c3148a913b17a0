"""New research: a question and its settings; Start runs it in the background and opens it."""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from pydantic import ValidationError

from ttdr.api import check_model, model_names, open_index, validate_docs, validate_question
from ttdr.config import Settings
from ttdr.errors import TtdrError
from ui import icons
from ui.navigation import open_run
from ui.panels.research_settings import more_settings
from ui.reader import reader
from ui.safe_markdown import escape_markdown
from ui.uploads import UPLOAD_TYPES, save_uploads, upload_collection
from ui.worker import start_research

OTHER_FOLDER = "Another checkpoint folder…"
SEARCH_MODES = {
    "auto": "Auto — the web, falling back to your documents",
    "web": "Web only",
    "local": "Local documents only",
}

settings = Settings()
if settings.searxng_url or settings.search == "searxng":
    SEARCH_MODES["searxng"] = f"SearXNG at {settings.searxng_url or '(TTDR_SEARXNG_URL unset)'}"
st.title("New research")
if not reader().history(limit=1):
    st.info(
        "**Welcome to ttdr.** Ask a question and ttdr writes a cited report the way "
        "*test-time diffusion* does: it plans the sections, writes a first draft R0 from the "
        "model's own knowledge, then denoises it step by step — each step searches, answers "
        "with citations and revises one section. You can watch every draft change, and every "
        "run is kept under History."
    )

question = st.text_area(
    "Question",
    key="question",
    placeholder="How do diffusion language models decode text in parallel?",
)


def choose_model() -> str:
    options = model_names()
    if settings.model not in options:
        options.insert(0, settings.model)
    choice = st.selectbox(
        "Model",
        [*options, OTHER_FOLDER],
        index=options.index(settings.model),
        key="model",
        help="A preset (see Models) or a local checkpoint folder of a known family.",
    )
    if choice == OTHER_FOLDER:
        return st.text_input("Checkpoint folder", key="model_folder").strip()
    return choice


left, right = st.columns(2)
with left:
    model = choose_model()
    check = check_model(model, settings.model_cache) if model else None
    if check is None:
        st.caption("Give the path of a checkpoint folder.")
    elif check.state == "ready":
        st.caption(f"{icons.READY} {check.family} family · ready")
    elif check.state == "will_download":
        st.info(escape_markdown(check.message), icon=icons.DOWNLOAD)
    else:
        st.error(escape_markdown(check.message), icon=icons.ERROR)
    iterations = st.number_input(
        "Denoising steps",
        min_value=0,
        max_value=50,
        value=settings.iterations,
        key="iterations",
        help="How many times the draft is revised with new evidence after R0.",
    )
with right:
    search = st.radio(
        "Search",
        list(SEARCH_MODES),
        index=list(SEARCH_MODES).index(settings.search),
        format_func=SEARCH_MODES.__getitem__,
        key="search",
    )
    docs_text = st.text_area(
        "Documents to index first",
        key="docs",
        placeholder="/path/to/folder\n/path/to/paper.pdf",
        help="Folders or files (.md .txt .html .pdf .docx .pptx .xlsx .epub .csv), one per line; "
        "unchanged files are skipped.",
    )
    uploads = st.file_uploader(
        "Upload documents",
        type=list(UPLOAD_TYPES),
        accept_multiple_files=True,
        key="uploads",
        help="Indexed into a collection of this run's own, which the run then searches alone.",
    )
    collection_name = st.text_input(
        "Collection",
        key="collection",
        placeholder="uploads get a collection of their own",
        help="Search only this document collection (`ttdr index list --collections`); the "
        "uploads and the documents above are filed in it.",
    )
docs = [Path(line.strip()).expanduser() for line in docs_text.splitlines() if line.strip()]
if (uploads or collection_name.strip()) and search != "local":
    st.caption("With documents in a collection, the run searches that collection only.")
elif search == "local" and not docs and open_index(settings).count() == 0:
    st.warning(
        "Local search needs documents and the index is empty: add a folder above, or index "
        "some with `ttdr index add PATH`."
    )
elif search != "local":
    st.caption(
        "Web search uses DuckDuckGo. If the web is unreachable, *auto* falls back to your "
        "indexed documents and says so; *web* stops with an explanation."
    )

overrides, settings_runnable = more_settings(settings)

runnable = check is not None and check.runnable and settings_runnable
if st.button("Start research", type="primary", key="start", disabled=not runnable):
    try:
        collection = (
            upload_collection(uploads, collection_name)
            if uploads or collection_name.strip()
            else None
        )
        if uploads:
            docs += save_uploads(uploads, settings.home, collection)
        config = settings.research_config(
            model=model,
            search=search,
            docs=docs,
            collection=collection,
            iterations=int(iterations),
            **overrides,
        )
        cleaned = validate_question(question)
        validate_docs(config.docs)
        run_id = start_research(cleaned, config, settings)
    except (TtdrError, ValidationError, ValueError) as exc:  # ValueError: a collection's name
        st.error(str(exc))
    else:
        open_run(run_id)
