"""`ttdr bench`: benchmarks that print JSON (speed is measured here, never in tests)."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from ttdr.cli.console import guarded
from ttdr.config import Settings

bench_app = typer.Typer(help="Benchmarks that print JSON.", no_args_is_help=True)


@bench_app.command("engine")
def bench_engine(
    model: Annotated[str | None, typer.Option(help="Preset or checkpoint folder.")] = None,
    tiny: Annotated[
        str | None, typer.Option(help="Benchmark a tiny random model of this family instead.")
    ] = None,
    tokens: Annotated[int, typer.Option(min=4, help="Tokens to fill per prompt.")] = 64,
    repeats: Annotated[int, typer.Option(min=1, help="Timed repeats (median).")] = 1,
) -> None:
    """Autoregressive vs naive diffusion vs block-parallel decoding on the same weights."""
    from ttdr.api import engine_benchmark

    def bench() -> None:
        report = engine_benchmark(
            Settings(), model=model, tiny_family=tiny, new_tokens=tokens, repeats=repeats
        )
        typer.echo(json.dumps(report, indent=2))

    guarded(bench)


@bench_app.command("retrieval")
def bench_retrieval(
    pages: Annotated[int, typer.Option(min=10, help="Fixture pages served on loopback.")] = 200,
    local_docs: Annotated[int, typer.Option(min=10, help="Documents to index.")] = 1000,
) -> None:
    """Fetching (concurrent vs serial), extraction and local-index speed, as JSON."""
    from ttdr.api import retrieval_benchmark

    typer.echo(json.dumps(retrieval_benchmark(pages, local_docs), indent=2))
