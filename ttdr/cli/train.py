"""`ttdr train a2d data|fit|bench|loss|eval|ship`: the default model made a block-diffusion model.

Each command is resumable or repeatable: `data` appends to its shards and skips prompts already
answered, `fit` continues from the checkpoint in --out, `bench`, `loss`, `eval` print JSON, `ship`
writes the adapter the `smollm2-135m-a2d` preset loads. Checkpoints belong outside the
repository; only the shipped adapter file is meant to be committed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from ttdr.cli.console import guarded
from ttdr.cli.output import write_output
from ttdr.config import Settings

train_app = typer.Typer(help="Train ttdr's own models.", no_args_is_help=True)
a2d_app = typer.Typer(
    help="Convert the default (autoregressive) model into a block-diffusion model.",
    no_args_is_help=True,
)
train_app.add_typer(a2d_app, name="a2d")

ModelOption = Annotated[
    str | None, typer.Option("--model", help="Base model: a preset or checkpoint folder.")
]
SourceOption = Annotated[
    list[Path] | None,
    typer.Option("--source", help="Folder of .md/.html/.txt text (repeatable); default: the "
                 "example corpus and /usr/share/doc."),
]  # fmt: skip
MaskOption = Annotated[
    Literal["random", "suffix"],
    typer.Option(
        help="Mask states the noisy copies train: random (all of them, complementary) or "
        "suffix (only those left-to-right filling passes through)."
    ),
]
ThreadsOption = Annotated[
    int | None, typer.Option(min=1, help="CPU threads (default: every core).")
]


@a2d_app.command("data")
def data_command(
    out: Annotated[Path, typer.Option(help="Folder for the JSONL shards (appended to).")],
    tokens: Annotated[int, typer.Option(min=1, help="Answer tokens to have in the shards.")],
    model: ModelOption = None,
    source: SourceOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Prompts generated together.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the prompt stream.")] = 0,
    threads: ThreadsOption = None,
    repetition_penalty: Annotated[
        float | None,
        typer.Option(min=1.0, help="Instead of the model preset's (1.2 for the default)."),
    ] = None,
) -> None:
    """The base model's own greedy answers to ttdr-shaped and general prompts."""
    from ttdr.api import a2d_data

    def run() -> None:
        stats = a2d_data(
            Settings(), out, tokens, model=model, sources=source, batch_size=batch_size,
            seed=seed, threads=threads, repetition_penalty=repetition_penalty, log=typer.echo,
        )  # fmt: skip
        typer.echo(json.dumps(stats, indent=2))

    guarded(run)


@a2d_app.command("fit")
def fit_command(
    data: Annotated[Path, typer.Option(help="Folder of shards from `ttdr train a2d data`.")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoint, adapter, log (resumed).")],
    model: ModelOption = None,
    block_size: Annotated[int, typer.Option(min=1)] = 4,
    rank: Annotated[int, typer.Option(min=1, help="LoRA rank.")] = 16,
    alpha: Annotated[int, typer.Option(min=1, help="LoRA alpha.")] = 32,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-4,
    row_tokens: Annotated[int, typer.Option(min=16, help="Slots per packed row.")] = 1024,
    rows: Annotated[int, typer.Option(min=1, help="Packed rows per step.")] = 2,
    max_tokens: Annotated[int, typer.Option(help="Answer tokens to train on.")] = 2_000_000,
    max_steps: Annotated[int | None, typer.Option(help="Stop after this many steps.")] = None,
    checkpoint_minutes: Annotated[float, typer.Option(help="Minutes between checkpoints.")] = 5.0,
    log_every: Annotated[int, typer.Option(min=1, help="Steps per log line.")] = 10,
    bf16: Annotated[bool, typer.Option(help="bfloat16 autocast.")] = False,
    prompt_grad: Annotated[
        bool,
        typer.Option(help="Backpropagate through the prompts (--no-prompt-grad: cheaper steps)."),
    ] = True,
    seed: Annotated[int, typer.Option()] = 0,
    masks: MaskOption = "random",
    certainty: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Certainty forcing's weight: entropy of masked slots already predicted right "
            "(dParallel), so decoding can commit them in parallel; 0 leaves it out.",
        ),
    ] = 0.0,
    certainty_temperature: Annotated[
        float, typer.Option(min=0.01, help="Temperature the certainty term's entropy is taken at.")
    ] = 0.5,
    threads: ThreadsOption = None,
    init_adapter: Annotated[
        Path | None,
        typer.Option(
            help="Warm-start a new run from this adapter (e.g. the shipped one); "
            "ignored when --out holds a checkpoint."
        ),
    ] = None,
) -> None:
    """Block-diffusion LoRA training; continues from the checkpoint in --out if there is one."""
    from ttdr.api import a2d_fit

    def run() -> None:
        done = a2d_fit(
            Settings(), data, out, model=model, init_adapter=init_adapter, log=typer.echo,
            block_size=block_size, rank=rank, alpha=alpha, lr=lr, row_tokens=row_tokens,
            rows=rows, bf16=bf16, prompt_grad=prompt_grad, seed=seed, max_tokens=max_tokens,
            max_steps=max_steps, masks=masks, certainty=certainty,
            certainty_temperature=certainty_temperature, checkpoint_minutes=checkpoint_minutes,
            log_every=log_every, threads=threads,
        )  # fmt: skip
        typer.echo(json.dumps(done))

    guarded(run)


@a2d_app.command("bench")
def bench_command(
    data: Annotated[Path, typer.Option(help="Folder of shards from `ttdr train a2d data`.")],
    model: ModelOption = None,
    steps: Annotated[int, typer.Option(min=1, help="Steps' worth of documents to time.")] = 4,
    row_tokens: Annotated[int, typer.Option(min=16, help="Slots per packed row.")] = 1024,
    rows: Annotated[int, typer.Option(min=1, help="Packed rows per step.")] = 2,
    init_adapter: Annotated[
        Path | None, typer.Option(help="Start from this adapter's weights (default: fresh LoRA).")
    ] = None,
    threads: ThreadsOption = None,
) -> None:
    """Seconds per training step: packed rows, one document at a time, and that without the
    prompt's gradient, on the same documents and masks (JSON)."""
    from ttdr.api import a2d_bench_step

    def run() -> None:
        report = a2d_bench_step(
            Settings(), data, model=model, steps=steps, init_adapter=init_adapter,
            log=lambda line: typer.echo(line, err=True), row_tokens=row_tokens, rows=rows,
            threads=threads,
        )  # fmt: skip
        typer.echo(json.dumps(report, indent=2))

    guarded(run)


@a2d_app.command("loss")
def loss_command(
    adapter: Annotated[Path, typer.Option(help="Adapter file (adapter.safetensors).")],
    data: Annotated[Path, typer.Option(help="Shards held out of training.")],
    exclude: Annotated[
        Path | None, typer.Option(help="Training shards: their prompts are left out of --data.")
    ] = None,
    masks: MaskOption = "random",
    model: ModelOption = None,
    threads: ThreadsOption = None,
) -> None:
    """Held-out block-diffusion loss (fixed masks), to compare recipes cheaply (JSON)."""
    from ttdr.api import a2d_held_out_loss, use_threads

    def run() -> None:
        use_threads(threads)
        report = a2d_held_out_loss(
            Settings(), adapter, data, model=model, exclude=exclude, masks=masks
        )
        typer.echo(json.dumps(report, indent=2))

    guarded(run)


@a2d_app.command("confidence")
def confidence_command(
    data: Annotated[Path, typer.Option(help="Shards from `ttdr train a2d data`.")],
    records: Annotated[int, typer.Option(min=1, help="Records to score.")] = 48,
    model: ModelOption = None,
    threads: ThreadsOption = None,
) -> None:
    """How predictable the shards' answers are to the base model (JSON): NLL, share > 0.9."""
    from ttdr.api import a2d_target_confidence, use_threads

    def run() -> None:
        use_threads(threads)
        report = a2d_target_confidence(Settings(), data, model=model, records=records)
        typer.echo(json.dumps(report, indent=2))

    guarded(run)


@a2d_app.command("eval")
def eval_command(
    adapter: Annotated[Path, typer.Option(help="Adapter file (adapter.safetensors).")],
    model: ModelOption = None,
    source: SourceOption = None,
    prompts: Annotated[int, typer.Option(min=0, help="Held-apart ttdr-shaped prompts.")] = 16,
    factual: Annotated[int, typer.Option(min=0, help="Short factual prompts (≤ 50).")] = 50,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    threads: ThreadsOption = None,
    repetition_penalty: Annotated[
        float, typer.Option(min=1.0, help="For every mode, the AR baseline included.")
    ] = 1.2,
    dtype: Annotated[
        Literal["auto", "float32", "bfloat16", "int8", "int4"],
        typer.Option(help="Decode every mode as TTDR_DTYPE would (outputs scored in float32)."),
    ] = "auto",
) -> None:
    """Tokens per forward (threshold 0.9 / 0.7), NLL under the base, agreement with AR greedy."""
    from ttdr.api import a2d_eval, use_threads

    def run() -> None:
        use_threads(threads)
        report = a2d_eval(
            Settings(), adapter, model=model, sources=source, prompts=prompts, factual=factual,
            repetition_penalty=repetition_penalty, dtype=dtype,
            log=lambda line: typer.echo(line, err=True),
        )  # fmt: skip
        text = json.dumps(report, indent=2)
        if out is not None:
            write_output(out, text + "\n")
        typer.echo(text)

    guarded(run)


@a2d_app.command("ship")
def ship_command(
    adapter: Annotated[Path, typer.Option(help="A fit's adapter file (adapter.safetensors).")],
    out: Annotated[
        Path | None, typer.Option(help="Where to write it; default: the preset's own file.")
    ] = None,
) -> None:
    """Copy a fit's adapter (in bfloat16, same metadata) to where the converted preset loads it."""
    from ttdr.api import a2d_ship

    def run() -> None:
        dest, meta = a2d_ship(adapter, out)
        steps = meta.training.get("steps", "?")
        tokens = meta.training.get("answer_tokens", "?")
        typer.echo(f"{dest}: block {meta.block_size}, rank {meta.rank}, step {steps}, "
                   f"{tokens} answer tokens ({dest.stat().st_size / 1e6:.1f} MB)")  # fmt: skip

    guarded(run)
