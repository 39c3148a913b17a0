"""`ttdr bench`: benchmarks that print JSON (speed is measured here, never in tests)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ttdr.cli.console import guarded
from ttdr.config import Settings

DTYPES = ("auto", "float32", "bfloat16", "int8", "int4")
bench_app = typer.Typer(help="Benchmarks that print JSON.", no_args_is_help=True)


@bench_app.command("engine")
def bench_engine(
    model: Annotated[str | None, typer.Option(help="Preset or checkpoint folder.")] = None,
    tiny: Annotated[
        str | None, typer.Option(help="Benchmark a tiny random model of this family instead.")
    ] = None,
    tokens: Annotated[int, typer.Option(min=4, help="Tokens to fill per prompt.")] = 64,
    repeats: Annotated[int, typer.Option(min=1, help="Timed repeats (median).")] = 1,
    dtype: Annotated[
        str | None,
        typer.Option(help="auto, float32, bfloat16, int8 or int4 (default: TTDR_DTYPE)."),
    ] = None,
    plain: Annotated[
        bool,
        typer.Option(
            help="Without fused projections, the static KV cache and the one-token AR step "
            "(before)."
        ),
    ] = False,
    sweep: Annotated[
        bool, typer.Option(help="Time one forward per block size and context length instead.")
    ] = False,
    out: Annotated[
        Path | None, typer.Option(help="With --sweep: write cost_sweep.json and .png here.")
    ] = None,
    vs: Annotated[
        str | None, typer.Option(help="Also run a peer engine on the same GGUF: llama-cpp.")
    ] = None,
    llama_server: Annotated[
        str | None, typer.Option(help="The llama-server binary (default: found by --vs).")
    ] = None,
    compile_steps: Annotated[
        bool | None,
        typer.Option("--compile/--no-compile", help="Compile the decode steps (TTDR_COMPILE)."),
    ] = None,
) -> None:
    """Autoregressive vs naive diffusion vs block-parallel decoding on the same weights."""
    from ttdr.api import engine_benchmark

    if vs not in (None, "llama-cpp"):
        raise typer.BadParameter(f"--vs takes llama-cpp, not {vs!r}")
    if dtype not in (None, *DTYPES):
        raise typer.BadParameter(f"--dtype takes {', '.join(DTYPES)}, not {dtype!r}")

    def bench() -> None:
        chosen = {"dtype": dtype, "compile": compile_steps}
        settings = Settings(**{name: value for name, value in chosen.items() if value is not None})
        report = engine_benchmark(
            settings,
            model=model,
            tiny_family=tiny,
            new_tokens=tokens,
            repeats=repeats,
            plain=plain,
            sweep=sweep,
            out=out,
            vs=vs,
            llama_server=llama_server,
        )
        skipped = report.get("llama_cpp", {}).get("skipped")
        if skipped:
            typer.echo(f"llama.cpp skipped: {skipped}", err=True)
        typer.echo(json.dumps(report, indent=2))

    guarded(bench)


@bench_app.command("serve")
def bench_serve(
    model: Annotated[str | None, typer.Option(help="Preset or checkpoint folder to serve.")] = None,
    tiny: Annotated[
        str | None, typer.Option(help="Serve a tiny random model of this family instead.")
    ] = None,
    concurrency: Annotated[
        str, typer.Option(help="Concurrent clients per level, comma-separated.")
    ] = "1,4,16",
    rounds: Annotated[int, typer.Option(min=1, help="Requests each client sends per level.")] = 2,
    tokens: Annotated[int, typer.Option(min=1, help="max_tokens of each request.")] = 64,
    max_batch: Annotated[int, typer.Option(min=1, help="The server's --max-batch.")] = 8,
) -> None:
    """`ttdr serve` under 1, 4 and 16 concurrent clients, batching off and on: generated
    tokens/s, p50/p95 latency, and each throughput's ratio to one at a time."""
    from ttdr.api import serve_benchmark

    levels = _levels(concurrency)

    def bench() -> None:
        report = serve_benchmark(
            Settings(),
            model=model,
            tiny_family=tiny,
            concurrency=levels,
            rounds=rounds,
            max_tokens=tokens,
            max_batch=max_batch,
        )
        typer.echo(json.dumps(report, indent=2))

    guarded(bench)


def _levels(text: str) -> list[int]:
    try:
        levels = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        levels = []
    if not levels or min(levels) < 1 or max(levels) > 256:
        raise typer.BadParameter(
            f"{text!r} is not a list of client counts from 1 to 256, like 1,4,16",
            param_hint="--concurrency",
        )
    return levels


@bench_app.command("retrieval")
def bench_retrieval(
    pages: Annotated[int, typer.Option(min=10, help="Fixture pages served on loopback.")] = 200,
    local_docs: Annotated[int, typer.Option(min=10, help="Documents to index.")] = 1000,
) -> None:
    """Fetching (concurrent vs serial), extraction and local-index speed, as JSON."""
    from ttdr.api import retrieval_benchmark

    typer.echo(json.dumps(retrieval_benchmark(pages, local_docs), indent=2))
