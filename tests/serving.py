"""`ttdr serve` as a real subprocess on a free loopback port, for the serving tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "test-token-3f9a"  # the server's bearer token in these tests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    log: Path
    relaunch: tuple  # start_server's arguments, to bring it back on the same port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Start it again on the same port (after `kill`), as an operator would."""
        model, home, args, token = self.relaunch
        self.process = start_server(model, home, *args, port=self.port, token=token).process


def start_server(
    model: Path, home: Path, *args: str, port: int | None = None, token: str | None = TOKEN
) -> Server:
    """`ttdr serve --model MODEL` through the real command line, once it answers."""
    port = port or free_port()
    env = {
        **os.environ,
        "TTDR_HOME": str(home),
        "XDG_CONFIG_HOME": str(home / "xdg-config"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
    }
    env.pop("TTDR_SERVE_TOKEN", None)
    if token:
        env["TTDR_SERVE_TOKEN"] = token
    home.mkdir(parents=True, exist_ok=True)
    log = home / f"serve-{port}.log"
    command = [sys.executable, "-m", "ttdr.cli", "serve", "--model", str(model)]
    command += ["--port", str(port), *args]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    server = Server(process, port, log, (model, home, args, token))
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"ttdr serve exited {process.returncode}: {log.read_text()}")
        try:
            if httpx.get(f"{server.url}/health", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    server.kill()
    raise RuntimeError(f"ttdr serve did not answer in 90 s: {log.read_text()}")


@pytest.fixture(scope="session")
def tiny_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """One `ttdr serve` of the tiny model for the session (it starts in ~10 s, mostly
    transformers' imports): at most two requests at once, at most 300 tokens each."""
    home = tmp_path_factory.mktemp("serve-home")
    server = start_server(tiny_model, home, "--max-tokens", "300", "--max-concurrent", "2")
    yield server
    server.kill()
