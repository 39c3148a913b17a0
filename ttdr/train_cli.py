"""`ttdr train a2d data|fit|eval`: convert the default model into a block-diffusion model.

Each command is resumable or repeatable: `data` appends to its shards and skips prompts already
answered, `fit` continues from the checkpoint in --out, `eval` prints JSON. Checkpoints belong
outside the repository; only the adapter file is meant to be committed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

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
ThreadsOption = Annotated[
    int | None, typer.Option(min=1, help="CPU threads (default: every core).")
]


def _base_folder(model: str | None) -> Path:
    from backends.llm.registry import resolve_model_folder

    settings = Settings()
    return resolve_model_folder(model or settings.model, settings.model_cache)


def _threads(threads: int | None) -> None:
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)


def _guarded(action) -> None:
    from ttdr.cli import guarded

    guarded(action)


@a2d_app.command("data")
def a2d_data(
    out: Annotated[Path, typer.Option(help="Folder for the JSONL shards (appended to).")],
    tokens: Annotated[int, typer.Option(min=1, help="Answer tokens to have in the shards.")],
    model: ModelOption = None,
    source: SourceOption = None,
    batch_size: Annotated[int, typer.Option(min=1, help="Prompts generated together.")] = 32,
    seed: Annotated[int, typer.Option(help="Seed of the prompt stream.")] = 0,
    threads: ThreadsOption = None,
) -> None:
    """The base model's own greedy answers to ttdr-shaped and general prompts."""
    from backends.llm.a2d.data import PromptBuilder, default_sources, gather_texts, generate_data
    from backends.llm.registry import load_generator

    def run() -> None:
        _threads(threads)
        settings = Settings()
        engine = load_generator(model or settings.model, settings.model_cache, dtype="float32")
        docs = gather_texts(source or default_sources())
        builder = PromptBuilder(docs, seed=seed)
        stats = generate_data(engine, builder, out, tokens, batch_size=batch_size, log=typer.echo)
        typer.echo(json.dumps(stats.to_json(), indent=2))

    _guarded(run)


@a2d_app.command("fit")
def a2d_fit(
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
    seed: Annotated[int, typer.Option()] = 0,
    threads: ThreadsOption = None,
) -> None:
    """Block-diffusion LoRA training; continues from the checkpoint in --out if there is one."""
    from backends.llm.a2d.trainer import FitConfig, Trainer

    def run() -> None:
        config = FitConfig(
            block_size=block_size,
            rank=rank,
            alpha=alpha,
            lr=lr,
            row_tokens=row_tokens,
            rows=rows,
            bf16=bf16,
            seed=seed,
            max_tokens=max_tokens,
            max_steps=max_steps,
            checkpoint_minutes=checkpoint_minutes,
            log_every=log_every,
            threads=threads,
        )
        trainer = Trainer(_base_folder(model), data, out, config, log=typer.echo)
        trainer.fit()
        typer.echo(
            json.dumps(
                {
                    "event": "done",
                    "adapter": str(out / "adapter.safetensors"),
                    "step": trainer.position.step,
                    "tokens": trainer.position.tokens,
                }
            )
        )

    _guarded(run)


@a2d_app.command("eval")
def a2d_eval(
    adapter: Annotated[Path, typer.Option(help="Adapter file (adapter.safetensors).")],
    model: ModelOption = None,
    source: SourceOption = None,
    prompts: Annotated[int, typer.Option(min=0, help="Held-apart ttdr-shaped prompts.")] = 16,
    factual: Annotated[int, typer.Option(min=0, help="Short factual prompts (≤ 50).")] = 50,
    out: Annotated[Path | None, typer.Option(help="Also write the JSON here.")] = None,
    threads: ThreadsOption = None,
) -> None:
    """Tokens per forward (threshold 0.9 / 0.7), NLL under the base, agreement with AR greedy."""
    from backends.llm.a2d.data import default_sources
    from backends.llm.a2d.evaluate import evaluate_adapter

    def run() -> None:
        _threads(threads)
        report = evaluate_adapter(
            _base_folder(model),
            adapter,
            source or default_sources(),
            prompts=prompts,
            factual=factual,
            log=lambda line: typer.echo(line, err=True),
        )
        text = json.dumps(report, indent=2)
        if out is not None:
            out.write_text(text + "\n")
        typer.echo(text)

    _guarded(run)
