"""The history as the pages read it: one `Researcher` per data directory, kept by the server.

Settings are read on every call, so the data directory is whatever `TTDR_HOME` says now.
"""

from __future__ import annotations

import streamlit as st

from ttdr.api import Researcher
from ttdr.config import Settings


def reader() -> Researcher:
    return _reader_for(str(Settings().db_path))


@st.cache_resource(show_spinner=False)
def _reader_for(db_path: str) -> Researcher:
    return Researcher(settings=Settings())
