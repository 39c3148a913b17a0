"""The benchmarks `ttdr bench` prints as JSON: decoding speed on the engine, and fetching,
extraction and local-index speed. Part of the front door (`ttdr.api` re-exports it); each
benchmark's code lives with what it measures, in backends/llm/bench.py and
backends/search/bench.py.
"""

from __future__ import annotations

from typing import Any

from ttdr.config import Settings


def engine_benchmark(
    settings: Settings,
    *,
    model: str | None = None,
    tiny_family: str | None = None,
    new_tokens: int = 64,
    repeats: int = 1,
) -> dict[str, Any]:
    """Autoregressive vs naive diffusion vs block-parallel decoding on the same weights: of
    `model` (default: the settings' model), or of a tiny random model of `tiny_family`."""
    from backends.llm.bench import run_engine_benchmark

    return run_engine_benchmark(
        model or settings.model,
        settings.model_cache,
        tiny_family=tiny_family,
        new_tokens=new_tokens,
        repeats=repeats,
        device=settings.device,
        dtype=settings.dtype,
    )


def retrieval_benchmark(pages: int = 200, local_docs: int = 1000) -> dict[str, Any]:
    """Fetching (concurrent vs serial) from loopback fixture pages, extraction, and the local
    index over `local_docs` documents."""
    from backends.search.bench import run_retrieval_benchmark

    return run_retrieval_benchmark(pages, local_docs)
