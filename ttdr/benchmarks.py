"""The benchmarks `ttdr bench` prints as JSON: decoding speed on the engine, a served engine
under concurrent clients, and fetching, extraction and local-index speed. Part of the front
door (`ttdr.api` re-exports it); each benchmark's code lives with what it measures, in
backends/llm/bench.py, backends/llm/remote/bench.py and backends/search/bench.py.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ttdr.config import Settings


def engine_benchmark(
    settings: Settings,
    *,
    model: str | None = None,
    tiny_family: str | None = None,
    new_tokens: int = 64,
    repeats: int = 1,
    plain: bool = False,
    sweep: bool = False,
    out: Path | None = None,
    vs: str | None = None,
    llama_server: str | None = None,
) -> dict[str, Any]:
    """Autoregressive vs naive diffusion vs block-parallel decoding on the same weights: of
    `model` (default: the settings' model), or of a tiny random model of `tiny_family`, each
    mode against the weight-read bound measured in the same run. `plain` measures without the
    load-time and cache optimisations; `sweep` times one forward across block sizes and
    context lengths instead (JSON and a plot into `out`); `vs="llama-cpp"` adds llama-server
    on the default model's GGUF."""
    from backends.llm.bench import run_engine_benchmark

    return run_engine_benchmark(
        model or settings.model,
        settings.model_cache,
        tiny_family=tiny_family,
        new_tokens=new_tokens,
        repeats=repeats,
        device=settings.device,
        dtype=settings.dtype,
        plain=plain,
        sweep=sweep,
        compile_steps=settings.compile,
        out=out,
        vs=vs,
        llama_server=llama_server,
    )


def serve_benchmark(
    settings: Settings,
    *,
    model: str | None = None,
    tiny_family: str | None = None,
    concurrency: Sequence[int] = (1, 4, 16),
    rounds: int = 2,
    max_tokens: int = 64,
    max_batch: int = 8,
) -> dict[str, Any]:
    """Throughput and p50/p95 latency of `ttdr serve` at each level of `concurrency`, batching
    off and on: serving `model` (default: the settings' model), or a tiny random model of
    `tiny_family` (weights that write text under greedy decoding)."""
    from backends.llm.remote.bench import run_serve_benchmark
    from backends.llm.tiny import write_tiny_checkpoint

    with tempfile.TemporaryDirectory() as scratch:
        name = model or settings.model
        if tiny_family:
            name = str(write_tiny_checkpoint(Path(scratch) / tiny_family, tiny_family, seed=5))

        def command(port: int, batching: bool) -> list[str]:
            return [
                *(sys.executable, "-m", "ttdr.serve", "--model", name, "--port", str(port)),
                *("--max-concurrent", str(max(concurrency)), "--max-tokens", str(max_tokens)),
                *("--batch" if batching else "--no-batch", "--max-batch", str(max_batch)),
            ]

        report = run_serve_benchmark(
            command, concurrency=concurrency, rounds=rounds, max_tokens=max_tokens
        )
    return {**report, "max_batch": max_batch}


def retrieval_benchmark(pages: int = 200, local_docs: int = 1000) -> dict[str, Any]:
    """Fetching (concurrent vs serial) from loopback fixture pages, extraction, and the local
    index over `local_docs` documents."""
    from backends.search.bench import run_retrieval_benchmark

    return run_retrieval_benchmark(pages, local_docs)
