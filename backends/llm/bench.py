"""`ttdr bench engine`: three ways to decode the same weights and prompts, in one process.

- autoregressive: causal attention, one token per forward, KV cache (the baseline);
- naive diffusion: the family's attention, no cache, a fixed step per token of each block;
- block-parallel: the family's attention and cache, confidence threshold 0.9.

Every mode fills the same number of tokens (end tokens do not stop it), so tokens per
second compare like with like. A model not trained for diffusion (the default model, until its
adapter exists) is still measured in the diffusion modes for speed, with block-causal blocks
of `diffusion_block`; its tokens per forward stay near one because it is not confident in
parallel, and the report says so.
"""

from __future__ import annotations

import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch

from backends.llm.decoding import DecodePolicy
from backends.llm.engine import DiffusionEngine
from backends.llm.facts import CacheMode, ModelFacts
from backends.llm.loader import LoadedModel, load_checkpoint
from backends.llm.registry import pick_device, pick_dtype, resolve_model_folder
from backends.llm.tiny import write_tiny_checkpoint

PROMPTS = (
    "Explain how tides are caused by the Moon and the Sun.",
    "List three ways retrieval makes a research report more reliable.",
    "Summarise what a diffusion language model does differently from an autoregressive one.",
)


def run_engine_benchmark(
    model: str,
    cache_dir: Path,
    *,
    tiny_family: str | None = None,
    new_tokens: int = 64,
    repeats: int = 1,
    device: str = "auto",
    dtype: str = "auto",
    diffusion_block: int = 4,
) -> dict:
    target = pick_device(device)
    chosen = pick_dtype(target) if dtype == "auto" else getattr(torch, dtype)
    with tempfile.TemporaryDirectory() as scratch:
        if tiny_family:
            folder = write_tiny_checkpoint(Path(scratch) / tiny_family, tiny_family)
        else:
            folder = resolve_model_folder(model, cache_dir)
        loaded = load_checkpoint(folder, device=target, dtype=chosen)
    engines = decoding_modes(loaded, diffusion_block)
    prompts = [
        engines["autoregressive"].encode_chat([{"role": "user", "content": p}]) for p in PROMPTS
    ]
    results = {
        name: {"decoding": engine.info.decoding, **measure(engine, prompts, new_tokens, repeats)}
        for name, engine in engines.items()
    }
    baseline = results["autoregressive"]["tokens_per_s"]
    report = {
        "model": f"tiny random {tiny_family}" if tiny_family else model,
        "family": loaded.family.name,
        "device": str(target),
        "dtype": str(chosen).removeprefix("torch."),
        "cpu_threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "new_tokens_per_prompt": new_tokens,
        "prompts": len(prompts),
        "modes": results,
        "tokens_per_s_vs_autoregressive": {
            name: round(r["tokens_per_s"] / baseline, 3) for name, r in results.items()
        },
    }
    if loaded.facts.mask_token is None:
        report["note"] = (
            "this checkpoint has no mask token and was not trained for diffusion: the diffusion "
            "modes run it block-causally for speed only, so tokens per forward stay near one"
        )
    return report


def decoding_modes(loaded: LoadedModel, diffusion_block: int) -> dict[str, DiffusionEngine]:
    """Three engines over the same weights and tokenizer."""
    native = DiffusionEngine.from_loaded(loaded)
    facts, policy = native.facts, native.policy
    if facts.attention == "causal":  # no diffusion training: measure block-causal speed
        facts = replace(facts, attention="block_causal", block_size=diffusion_block)
        policy = policy.with_(block_size=diffusion_block, threshold=0.9)
    autoregressive = replace(facts, attention="causal", block_size=1, logit_shift=True)
    return {
        "autoregressive": _engine(
            native, autoregressive, DecodePolicy(block_size=1, threshold=1.0), "exact"
        ),
        "naive_diffusion": _engine(
            native, facts, policy.with_(threshold=None, steps_per_block=policy.block_size), "none"
        ),
        "block_parallel_cached": _engine(native, facts, policy.with_(threshold=0.9), facts.cache),
    }


def _engine(
    base: DiffusionEngine, facts: ModelFacts, policy: DecodePolicy, cache: CacheMode
) -> DiffusionEngine:
    info = replace(base.info, decoding=facts.describe(policy, cache))
    return DiffusionEngine(base.model, base.tokenizer, facts, info, policy=policy, cache=cache)


def measure(
    engine: DiffusionEngine, prompts: list[list[int]], new_tokens: int, repeats: int
) -> dict:
    run_once(engine, prompts[0], 4)  # warm-up: first calls pay for allocation
    walls, forwards, tokens = [], 0, 0
    for _ in range(repeats):
        start = time.perf_counter()
        for prompt in prompts:
            steps, filled = run_once(engine, prompt, new_tokens)
            forwards += steps
            tokens += filled
        walls.append(time.perf_counter() - start)
    wall = statistics.median(walls) * repeats
    return {
        "tokens": tokens,
        "forward_passes": forwards,
        "tokens_per_forward": round(tokens / forwards, 3),
        "tokens_per_s": round(tokens / wall, 2),
        "ms_per_forward": round(1000 * wall / forwards, 2),
        "wall_s": round(wall, 3),
    }


def run_once(engine: DiffusionEngine, prompt: list[int], new_tokens: int) -> tuple[int, int]:
    canvas, blocks = engine.generation_canvas([prompt], new_tokens)
    stats = engine.denoiser.fill(canvas, blocks, engine.policy)
    return stats.forward_passes, stats.committed
