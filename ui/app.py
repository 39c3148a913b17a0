"""The Streamlit app: `ttdr ui`, or `streamlit run ui/app.py`.

Pages: New research, Run (one run, live or finished), History, Models. The sidebar lists
the runs in progress, so a run started here is one click away from any page.

A history or index the app cannot use (a damaged or read-only file, a full disk) is shown as
its one-line explanation, not a traceback; nothing is cached when opening it fails, so once the
file is fixed a reload is enough.
"""

from __future__ import annotations

import streamlit as st

from ttdr.errors import TtdrError
from ttdr.models import RunStatus
from ui import icons
from ui.navigation import RUN, pages
from ui.reader import reader
from ui.safe_markdown import escape_markdown, one_line

st.set_page_config(page_title="ttdr research", page_icon=":material/autorenew:", layout="wide")
page = st.navigation(pages())

try:
    with st.sidebar:
        running = reader().history(limit=5, status=RunStatus.running)
        if running:
            st.caption("Running now")
            for run in running:
                label = escape_markdown(one_line(run.question, 60))
                st.page_link(RUN, label=label, icon=icons.RUNNING, query_params={"run": run.id})
    page.run()
except TtdrError as exc:
    st.error(escape_markdown(str(exc)), icon=icons.ERROR)
    st.caption("Reload this page once it is fixed.")
