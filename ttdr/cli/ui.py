"""`ttdr ui`: the Streamlit app, started as its own program (`python -m ui.launch`).

The process becomes the launcher (exec), so Ctrl-C and SIGTERM reach it as they would reach
`python -m ui.launch` itself, and the command line never imports the app.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer


def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    open_browser: Annotated[
        bool, typer.Option("--open", help="Open the UI in the browser once it is serving.")
    ] = False,
) -> None:
    """Serve the research UI (Streamlit) at http://ADDRESS:PORT."""
    command = [sys.executable, "-m", "ui.launch", "--port", str(port), "--address", address]
    if open_browser:
        command.append("--open")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)
