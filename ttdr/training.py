"""Training ttdr's own models (`ttdr train a2d`): the default autoregressive model converted
into a block-diffusion model by a LoRA adapter trained on the model's own answers.

Part of the front door (`ttdr.api` re-exports it); the training code is backends/llm/a2d/.
Each step can be repeated or resumed: `a2d_data` appends to its shards and skips prompts
already answered, `a2d_fit` continues from the checkpoint in its run folder.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ttdr.config import Settings

if TYPE_CHECKING:
    from backends.llm.a2d.meta import AdapterMeta

Log = Callable[[str], None]


def use_threads(threads: int | None) -> None:
    """CPU threads for torch (default: every core)."""
    import torch

    torch.set_num_threads(threads or os.cpu_count() or 1)


def base_model_folder(settings: Settings, model: str | None = None) -> Path:
    """The checkpoint folder of the base model (fetched first if it is the default preset)."""
    from backends.llm.registry import resolve_model_folder

    return resolve_model_folder(model or settings.model, settings.model_cache)


def a2d_data(
    settings: Settings,
    out: Path,
    tokens: int,
    *,
    model: str | None = None,
    sources: Sequence[Path] | None = None,
    batch_size: int = 32,
    seed: int = 0,
    threads: int | None = None,
    repetition_penalty: float | None = None,
    log: Log = print,
) -> dict[str, Any]:
    """The base model's own greedy answers to ttdr-shaped and general prompts, appended to the
    JSONL shards in `out` until they hold `tokens` answer tokens; returns the shards' stats.
    `threads` is applied after loading, which sizes the pool to every usable core (the data
    job usually shares the machine with a fit on the other core). `repetition_penalty`
    replaces the model preset's for these answers (recorded in the shards' stats.json)."""
    from agents import prompts as templates
    from backends.llm.a2d.data import PromptBuilder, default_sources, gather_texts, generate_data
    from backends.llm.registry import load_generator

    engine = load_generator(model or settings.model, settings.model_cache, dtype="float32")
    if repetition_penalty is not None:
        engine.policy = engine.policy.with_(repetition_penalty=repetition_penalty)
    if threads:
        use_threads(threads)
    builder = PromptBuilder(gather_texts(sources or default_sources()), templates, seed=seed)
    stats = generate_data(engine, builder, out, tokens, batch_size=batch_size, log=log)
    return stats.to_json()


def a2d_fit(
    settings: Settings,
    data: Path,
    out: Path,
    *,
    model: str | None = None,
    init_adapter: Path | None = None,
    log: Log = print,
    **options: Any,
) -> dict[str, Any]:
    """Block-diffusion LoRA training on the shards in `data`, continuing from the checkpoint
    in `out` if there is one, else from `init_adapter`'s weights if given (a new machine: the
    shipped adapter carries on where its run stopped). `options` are `FitConfig`'s fields
    (backends/llm/a2d/trainer.py). Returns where the adapter is and how far training got."""
    from backends.llm.a2d.trainer import FitConfig, Trainer

    folder = base_model_folder(settings, model)
    config = FitConfig(**options)
    trainer = Trainer(folder, data, out, config, log=log, init_adapter=init_adapter)
    trainer.fit()
    return {
        "event": "done",
        "adapter": str(out / "adapter.safetensors"),
        "step": trainer.position.step,
        "tokens": trainer.position.tokens,
    }


def a2d_bench_step(
    settings: Settings,
    data: Path,
    *,
    model: str | None = None,
    steps: int = 4,
    init_adapter: Path | None = None,
    log: Log = print,
    **options: Any,
) -> dict[str, Any]:
    """Seconds per training step in each layout (packed rows, one document at a time, and that
    without the prompt's gradient) on the shards in `data` (a scratch run folder; nothing is
    trained). `options` are `FitConfig`'s fields."""
    import tempfile

    from backends.llm.a2d.step_bench import compare_step_layouts
    from backends.llm.a2d.trainer import FitConfig, Trainer

    folder = base_model_folder(settings, model)
    with tempfile.TemporaryDirectory(prefix="ttdr-a2d-bench-") as scratch:
        config = FitConfig(**options)
        trainer = Trainer(folder, data, Path(scratch), config, log=log, init_adapter=init_adapter)
        return compare_step_layouts(trainer, steps)


def a2d_held_out_loss(
    settings: Settings,
    adapter: Path,
    data: Path,
    *,
    model: str | None = None,
    exclude: Path | None = None,
    masks: str = "random",
) -> dict[str, Any]:
    """The block-diffusion loss of `adapter` on the shards in `data` (fixed masks), leaving out
    prompts that are also in `exclude`: the cheap, smooth measure for comparing recipes.
    `masks="suffix"` scores the mask states left-to-right decoding meets."""
    from backends.llm.a2d.validate import held_out_loss

    folder = base_model_folder(settings, model)
    return held_out_loss(folder, adapter, data, exclude=exclude, masks=masks)


def a2d_target_confidence(
    settings: Settings, data: Path, *, model: str | None = None, records: int = 48
) -> dict[str, Any]:
    """How predictable the answers in `data` are to the base model (NLL, share above 0.9):
    compares data recipes before any CPU hour goes into training on them."""
    from backends.llm.a2d.validate import target_confidence

    return target_confidence(base_model_folder(settings, model), data, records=records)


def a2d_eval(
    settings: Settings,
    adapter: Path,
    *,
    model: str | None = None,
    sources: Sequence[Path] | None = None,
    prompts: int = 16,
    factual: int = 50,
    repetition_penalty: float = 1.2,
    dtype: str = "auto",
    log: Log = print,
) -> dict[str, Any]:
    """Tokens per forward (threshold 0.9 / 0.7, each with both fallbacks), NLL under the base
    model and agreement with its greedy answers, for `adapter` on held-apart prompts; every
    mode decodes with `repetition_penalty` (the presets' 1.2 by default)."""
    from agents import prompts as templates
    from backends.llm.a2d.data import PromptBuilder, default_sources, gather_texts
    from backends.llm.a2d.evaluate import evaluate_adapter

    builder = None
    if prompts:
        builder = PromptBuilder(gather_texts(sources or default_sources()), templates)
    return evaluate_adapter(
        base_model_folder(settings, model),
        adapter,
        builder,
        prompts=prompts,
        factual=factual,
        repetition_penalty=repetition_penalty,
        dtype=dtype,
        log=log,
    )


def a2d_ship(adapter: Path, out: Path | None = None) -> tuple[Path, AdapterMeta]:
    """Write `adapter` where the converted preset loads it (or to `out`); its path and metadata."""
    from backends.llm.a2d.adapter import ship_adapter
    from backends.llm.registry import CONVERTED_ADAPTER

    dest = out or CONVERTED_ADAPTER
    return dest, ship_adapter(adapter, dest)
