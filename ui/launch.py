"""Start the UI: `launch(port)` runs `streamlit run ui/app.py` headless and waits for it.

`ttdr ui [--port N] [--open]` calls it; so does `python -m ui.launch [--port N] [--address A]
[--open]`. The address is printed once, by us (streamlit's own welcome lines are hidden); with
`--open` the browser is opened (webbrowser, so `$BROWSER` is honoured) once the port answers.
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
import threading
import time
import webbrowser
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
        # The address is printed once, by launch(): no welcome lines, no "server started" log.
        "--logger.hideWelcomeMessage=true",
        "--logger.level=warning",
    ]


def launch(port: int = 8501, address: str = "127.0.0.1", open_browser: bool = False) -> int:
    """Serve the UI on http://ADDRESS:PORT until interrupted; returns streamlit's exit code."""
    print(f"ttdr UI on http://{address}:{port} (Ctrl-C to stop)", file=sys.stderr, flush=True)
    process = subprocess.Popen(streamlit_command(port, address))
    if open_browser:
        # A wildcard bind is reached from this machine's browser on the loopback address.
        host = "127.0.0.1" if address in ("0.0.0.0", "::", "") else address
        url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
        opener = threading.Thread(target=_open_when_serving, args=(url, host, port, process))
        opener.daemon = True
        opener.start()
    forward = _forward_sigterm(process)
    try:
        return process.wait()
    except KeyboardInterrupt:  # the terminal sent Ctrl-C to streamlit too; let it finish
        return process.wait()
    finally:
        if forward is not None:
            signal.signal(signal.SIGTERM, forward)


def _open_when_serving(url: str, host: str, port: int, process: subprocess.Popen) -> None:
    """Open `url` in the browser once the server accepts connections (a page opened before
    that would show "connection refused"); gives up if the server exits or takes a minute."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection((host, port), timeout=1):
                webbrowser.open(url)
                return
        except OSError:
            time.sleep(0.3)


def _forward_sigterm(process: subprocess.Popen):
    """A SIGTERM to us stops the server too, instead of leaving it running alone."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, lambda *_: process.terminate())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ui.launch", description=__doc__)
    parser.add_argument("--port", type=int, default=8501)
    parser.add_argument("--address", default="127.0.0.1")
    parser.add_argument("--open", action="store_true", help="open the UI in the browser")
    args = parser.parse_args(argv)
    return launch(args.port, args.address, open_browser=args.open)


if __name__ == "__main__":
    sys.exit(main())
