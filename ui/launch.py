"""Start the UI: `launch(port)` runs `streamlit run ui/app.py` headless and waits for it.

`ttdr ui [--port N]` calls it; so does `python -m ui.launch [--port N] [--address A]`.
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import threading
from pathlib import Path

APP = Path(__file__).with_name("app.py")


def streamlit_command(port: int, address: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.headless=true",  # no browser opened, no first-run e-mail prompt
        f"--server.port={port}",
        f"--server.address={address}",
        "--server.fileWatcherType=none",
        "--client.toolbarMode=minimal",
        "--browser.gatherUsageStats=false",
    ]


def launch(port: int = 8501, address: str = "127.0.0.1") -> int:
    """Serve the UI on http://ADDRESS:PORT until interrupted; returns streamlit's exit code."""
    print(f"ttdr UI on http://{address}:{port} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    process = subprocess.Popen(streamlit_command(port, address))
    forward = _forward_sigterm(process)
    try:
        return process.wait()
    except KeyboardInterrupt:  # the terminal sent Ctrl-C to streamlit too; let it finish
        return process.wait()
    finally:
        if forward is not None:
            signal.signal(signal.SIGTERM, forward)


def _forward_sigterm(process: subprocess.Popen):
    """A SIGTERM to us stops the server too, instead of leaving it running alone."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda *_: process.terminate())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.launch", description=__doc__)
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args(argv)
    return launch(args.port, args.address)


if __name__ == "__main__":
    sys.exit(main())
