"""The history as the pages read it: one `Researcher` per data directory, kept by the server.

Settings are read on every call, so the data directory is whatever `TTDR_HOME` says now.
A history that cannot be opened (damaged, read-only, a full disk) stops the page with its
one-line explanation instead of a traceback; a failed opening is not cached, so once the file
is fixed a reload is enough.
"""

from __future__ import annotations

from typing import NoReturn

import streamlit as st

from ttdr.api import Researcher
from ttdr.config import Settings
from ttdr.errors import TtdrError
from ui import icons
from ui.safe_markdown import escape_markdown


def reader() -> Researcher:
    try:
        return _reader_for(str(Settings().db_path))
    except TtdrError as error:
        stop_with(error)


def stop_with(error: TtdrError) -> NoReturn:
    """End this page with what went wrong and what to do about it."""
    st.error(escape_markdown(str(error)), icon=icons.ERROR)
    st.caption("Reload this page once it is fixed.")
    st.stop()


@st.cache_resource(show_spinner=False)
def _reader_for(db_path: str) -> Researcher:
    return Researcher(settings=Settings())
