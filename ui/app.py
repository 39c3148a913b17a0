"""The Streamlit app: `ttdr ui`, or `streamlit run ui/app.py`.

Pages: New research, Run (one run, live or finished), History, Models. The sidebar lists
the runs in progress, so a run started here is one click away from any page.

A history or index the app cannot use (a damaged or read-only file, a full disk) is shown as
its one-line explanation, on whichever page it is found, not as a traceback.
"""

from __future__ import annotations

import streamlit as st

from ttdr.errors import TtdrError
from ttdr.models import RunStatus
from ui import icons
from ui.navigation import RUN, pages
from ui.reader import reader, stop_with
from ui.safe_markdown import escape_markdown, one_line

st.set_page_config(page_title="ttdr research", page_icon=":material/autorenew:", layout="wide")
page = st.navigation(pages())
researcher = reader()  # before the sidebar, so an unusable history is explained on the page

try:
    with st.sidebar:
        running = researcher.history(limit=5, status=RunStatus.running)
        if running:
            st.caption("Running now")
            for run in running:
                label = escape_markdown(one_line(run.question, 60))
                st.page_link(RUN, label=label, icon=icons.RUNNING, query_params={"run": run.id})
    page.run()
except TtdrError as error:  # the file went bad while the app was open
    stop_with(error)
