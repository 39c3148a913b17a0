"""`ttdr bench serve`: throughput and latency of a `ttdr serve` under concurrent clients, with
batching off and on, in one run.

The server is a real subprocess on a free loopback port (the model loads once per mode). Each
level runs `concurrency` client threads, each with its own httpx client, sending greedy chat
requests back to back, so that many requests are in flight the whole time. Throughput is
generated tokens (the answers' `usage.completion_tokens`) over the level's wall time; latency
is per request, end to end. Each throughput is also given as a ratio to one at a time
(batching off, the smallest level: one client by default).
"""

from __future__ import annotations

import math
import os
import secrets
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from backends.llm.loopback import free_port
from ttdr.errors import ModelUnavailableError

# Different lengths on purpose: a batch pads its prompts to the longest.
PROMPTS = (
    "Explain how tides are caused by the Moon and the Sun.",
    "What is retrieval?",
    "List three ways retrieval makes a research report more reliable, with an example each.",
    "Summarise what a diffusion language model does differently from an autoregressive one.",
    "Name the planets.",
    "Why do research agents cite their sources, and what goes wrong when they do not?",
    "Define a block in block diffusion.",
    "Describe how a search engine ranks pages for a query, step by step.",
)

ServerCommand = Callable[[int, bool], list[str]]  # (port, batching on) -> argv


def run_serve_benchmark(
    command: ServerCommand,
    *,
    concurrency: Sequence[int] = (1, 4, 16),
    rounds: int = 2,
    max_tokens: int = 64,
    startup_timeout: float = 600.0,
    request_timeout: float = 600.0,
) -> dict[str, Any]:
    """Every level of `concurrency` against the server `command` starts, batching off then on."""
    levels = sorted(set(concurrency))
    modes: dict[str, dict[str, dict[str, Any]]] = {}
    model = ""
    for batching in (False, True):
        with _server(command, batching, startup_timeout) as (url, token):
            client = httpx.Client(base_url=url, headers=_auth(token), timeout=request_timeout)
            with client:
                model = client.get("/v1/models").json()["data"][0]["id"]
                _ask(client, PROMPTS[0], max_tokens)  # warm-up: lazy setup is not measured
            modes["batch" if batching else "no_batch"] = {
                str(c): _level(url, token, c, rounds, max_tokens, request_timeout) for c in levels
            }
    base = modes["no_batch"][str(levels[0])]["tokens_per_s"]
    return {
        "model": model,
        "max_tokens": max_tokens,
        "rounds_per_client": rounds,
        "concurrency": levels,
        "modes": modes,
        "tokens_per_s_vs_one_at_a_time": {
            mode: {level: _ratio(m["tokens_per_s"], base) for level, m in results.items()}
            for mode, results in modes.items()
        },
    }


def _level(
    url: str, token: str, clients: int, rounds: int, max_tokens: int, timeout: float
) -> dict[str, Any]:
    latencies: list[float] = []
    tokens: list[int] = []
    batches: list[int] = []
    failures: list[BaseException] = []
    released: list[float] = []  # the clock starts once every client is connected and ready
    start = threading.Barrier(clients, action=lambda: released.append(time.perf_counter()))

    def client_loop(index: int) -> None:
        with httpx.Client(base_url=url, headers=_auth(token), timeout=timeout) as client:
            start.wait()
            for r in range(rounds):
                prompt = PROMPTS[(index * rounds + r) % len(PROMPTS)]
                began = time.perf_counter()
                try:
                    answer = _ask(client, prompt, max_tokens)
                except BaseException as exc:  # reported once every thread is done
                    failures.append(exc)
                    return
                latencies.append(time.perf_counter() - began)
                tokens.append(int(answer["usage"]["completion_tokens"]))
                batches.append(int(answer["ttdr_stats"].get("batched", 1)))

    threads = [threading.Thread(target=client_loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - released[0]
    if failures:
        raise ModelUnavailableError(f"the served model failed under load: {failures[0]}")
    return {
        "requests": len(latencies),
        "tokens": sum(tokens),
        "seconds": round(seconds, 3),
        "tokens_per_s": round(sum(tokens) / seconds, 2),
        "latency_p50_s": round(_percentile(latencies, 50), 3),
        "latency_p95_s": round(_percentile(latencies, 95), 3),
        "mean_batch": round(sum(batches) / len(batches), 2),
    }


def _ask(client: httpx.Client, prompt: str, max_tokens: int) -> dict[str, Any]:
    body = {
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    answer = client.post("/v1/chat/completions", json=body)
    if answer.status_code != 200:
        raise ModelUnavailableError(
            f"{client.base_url} answered {answer.status_code}: {answer.text}"
        )
    return answer.json()


@contextmanager
def _server(command: ServerCommand, batching: bool, timeout: float) -> Iterator[tuple[str, str]]:
    """A `ttdr serve` on a free loopback port with a fresh token, until the block ends."""
    port = free_port()
    token = secrets.token_hex(16)
    env = {**os.environ, "TTDR_SERVE_TOKEN": token}
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "serve.log"
        with log.open("w") as out:
            process = subprocess.Popen(command(port, batching), env=env, stdout=out, stderr=out)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_until_ready(process, url, log, timeout)
            yield url, token
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def _wait_until_ready(process: subprocess.Popen, url: str, log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text().strip().splitlines()[-5:]
            raise ModelUnavailableError(
                f"ttdr serve exited with {process.returncode}: {' / '.join(tail)}"
            )
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise ModelUnavailableError(f"ttdr serve did not answer at {url} within {timeout:.0f} s")


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _percentile(values: Sequence[float], percent: float) -> float:
    """Nearest rank: the smallest value with at least `percent`% of values at or below it."""
    ordered = sorted(values)
    return ordered[max(math.ceil(percent / 100 * len(ordered)) - 1, 0)]


def _ratio(value: float, base: float) -> float | None:
    return round(value / base, 2) if base > 0 else None
