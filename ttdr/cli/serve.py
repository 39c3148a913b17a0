"""`ttdr serve`: the model behind an HTTP API, started as its own program
(`python -m ttdr.serve`).

The process becomes the server (exec), as `ttdr ui` becomes the app, so Ctrl-C and SIGTERM
reach it directly and the command line never imports the server or the engine. The token
travels in the environment, not in the new program's arguments.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from typing import Annotated

import typer

from ttdr.cli.console import err


def serve(
    model: Annotated[
        str | None, typer.Option(help="Model name or checkpoint folder (default: TTDR_MODEL).")
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but loopback wants --token.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(
            envvar="TTDR_SERVE_TOKEN",
            show_envvar=True,
            help="Bearer token clients must send (their TTDR_API_KEY); prefer the variable.",
        ),
    ] = None,
    max_body_bytes: Annotated[
        int, typer.Option(min=1, help="Larger request bodies get HTTP 413.")
    ] = 1_048_576,
    max_tokens: Annotated[
        int, typer.Option(min=1, help="Larger max_tokens (or span lengths) get HTTP 400.")
    ] = 2048,
    max_concurrent: Annotated[
        int,
        typer.Option(min=1, max=256, help="Requests running or queued at once; more get 429."),
    ] = 8,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch/--no-batch",
            envvar="TTDR_SERVE_BATCH",
            show_envvar=True,
            help="Run greedy chat and completion requests that queue up together as one "
            "batch (shared forward passes). Off by default: padding may change a greedy "
            "reply's rounding, so a batched answer can differ from the in-process one.",
        ),
    ] = False,
    max_batch: Annotated[
        int, typer.Option(min=1, max=256, help="Most requests in one batch (with --batch).")
    ] = 8,
) -> None:
    """Serve the model over HTTP: OpenAI's /v1/chat/completions, /v1/completions and
    /v1/models, plus /v1/ttdr/infill, /v1/ttdr/rewrite and /v1/ttdr/score."""
    if not token and not _loopback(host):
        err.print(
            f"[yellow]Warning:[/] serving on {host} without a token: anyone who reaches this "
            "address can use the model (set TTDR_SERVE_TOKEN)."
        )
    if token:
        os.environ["TTDR_SERVE_TOKEN"] = token
    command = [sys.executable, "-m", "ttdr.serve", "--host", host, "--port", str(port)]
    command += ["--max-body-bytes", str(max_body_bytes), "--max-tokens", str(max_tokens)]
    command += ["--max-concurrent", str(max_concurrent)]
    command += ["--batch" if batch else "--no-batch", "--max-batch", str(max_batch)]
    if model:
        command += ["--model", model]
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
