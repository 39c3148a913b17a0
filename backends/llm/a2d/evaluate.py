"""How good a converted model is, against the autoregressive base on the same prompts.

Measured per prompt set (held-apart prompts shaped like ttdr's calls; short factual prompts):
tokens per forward and tokens/s at each threshold and for the base's greedy AR decoding; the
mean NLL of each mode's outputs under the base model (a converted model that commits many
tokens per forward but writes text its parent finds unlikely has not converted well); and
agreement with the AR greedy output (the fraction of positions that match). Decoding is one
prompt at a time, as the agent calls the model, so tokens per forward is per sequence. The AR
mode also reports the base's certainty on its own answers (`certainty.py`): the tokens per
forward a converted model exactly as sure as its base would reach on that text.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from backends.llm.a2d.adapter import load_converted
from backends.llm.a2d.certainty import certainty_report
from backends.llm.a2d.data import (
    PromptBuilder,
    PromptSpec,
    factual_specs,
    held_apart_specs,
)
from backends.llm.decoding import DecodePolicy, Fallback
from backends.llm.engine import DiffusionEngine
from backends.llm.loader import decodes_packed, load_checkpoint
from backends.llm.protocol import ModelInfo
from backends.llm.registry import decode_precision
from backends.llm.transformer import Transformer


def converted_engine(
    converted,
    threshold: float,
    repetition_penalty: float,
    name: str,
    fallback: Fallback = "best",
) -> DiffusionEngine:
    """An engine over the merged model: block-causal, the adapter's block and mask, exact cache."""
    loaded, facts = converted.loaded, converted.facts
    policy = DecodePolicy(
        block_size=facts.block_size,
        threshold=threshold,
        repetition_penalty=repetition_penalty,
        fallback=fallback,
    )
    info = ModelInfo(
        name=name,
        family=loaded.family.name,
        decoding=facts.describe(policy, "exact"),
        path=str(loaded.folder),
        context_length=loaded.args.max_position_embeddings,
    )
    return DiffusionEngine(
        loaded.model, loaded.tokenizer, facts, info, policy=policy, cache="exact"
    )


def evaluate_adapter(
    base: Path,
    adapter: Path,
    builder: PromptBuilder | None,
    *,
    prompts: int = 16,
    factual: int = 50,
    thresholds: Sequence[float] = (0.9, 0.7),
    fallbacks: Sequence[Fallback] = ("best", "leftmost"),
    repetition_penalty: float = 1.2,
    dtype: str = "auto",
    log=print,
) -> dict[str, Any]:
    """Every mode on the same prompts: the base's AR greedy decoding, and the converted model at
    each threshold with each fallback (modes `threshold_T`, and `threshold_T_leftmost`).

    Every mode decodes as `ttdr research` would (`dtype` as `TTDR_DTYPE`, fused and, where it
    pays, packed weights), so tokens/s compare what a user gets; every output is scored by
    the base in float32 on the plain path, so NLLs compare across dtypes."""
    base_loaded = load_checkpoint(base, dtype=torch.float32)
    chosen, weights = decode_precision(dtype, torch.device("cpu"))
    ar_loaded = load_checkpoint(base, dtype=chosen, fuse=True, weights=weights)
    ar = DiffusionEngine.from_loaded(ar_loaded, repetition_penalty=repetition_penalty)
    converted = load_converted(base, adapter, dtype=chosen, fuse=True, weights=weights)
    engines = {"ar": ar}
    for threshold in thresholds:
        for fallback in fallbacks:
            mode = f"threshold_{threshold}" + ("" if fallback == "best" else f"_{fallback}")
            engines[mode] = converted_engine(
                converted, threshold, repetition_penalty, f"{adapter.name}@{mode}", fallback
            )
    sets = {"factual": factual_specs()[:factual]}
    if prompts and builder is not None:
        sets = {"ttdr_calls": held_apart_specs(builder, prompts), **sets}
    report: dict[str, Any] = {
        "adapter": str(adapter),
        "meta": {
            "base": converted.meta.base,
            "block_size": converted.meta.block_size,
            "mask_id": converted.meta.mask_id,
            "training": converted.meta.training,
        },
        "repetition_penalty": repetition_penalty,
        "dtype": str(chosen).removeprefix("torch."),
        "linear_layers": weights
        or ("onednn_packed" if decodes_packed(ar_loaded.model) else "float"),
        "sets": {},
    }
    for set_name, specs in sets.items():
        outputs = {mode: _decode_all(engine, specs) for mode, engine in engines.items()}
        reference = outputs["ar"]
        result = {}
        for mode, runs in outputs.items():
            result[mode] = _summarise(runs, reference, base_loaded.model)
            log(f"{set_name} {mode}: {result[mode]}")
        certainty = [
            next_token_probabilities(base_loaded.model, run["prompt"], run["output"])
            for run in reference
        ]
        block = converted.meta.block_size
        result["ar"]["base_certainty"] = certainty_report(certainty, (block, 2 * block), thresholds)
        log(f"{set_name} base certainty on the AR answers: {result['ar']['base_certainty']}")
        report["sets"][set_name] = {"prompts": len(specs), "modes": result}
    return report


def _decode_all(engine: DiffusionEngine, specs: Sequence[PromptSpec]) -> list[dict[str, Any]]:
    runs = []
    for spec in specs:
        prompt = engine.encode_chat(list(spec.messages))
        start = time.perf_counter()
        (reply,), stats = engine.generate_ids([prompt], spec.max_new_tokens)
        runs.append(
            {
                "prompt": prompt,
                "output": reply,
                "forwards": stats.forward_passes,
                "seconds": time.perf_counter() - start,
            }
        )
    return runs


def _summarise(runs, reference, base_model: Transformer) -> dict[str, float]:
    tokens = sum(len(r["output"]) for r in runs)
    forwards = sum(r["forwards"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    nll_sum, nll_count = 0.0, 0
    for run in runs:
        total, count = output_nll(base_model, run["prompt"], run["output"])
        nll_sum, nll_count = nll_sum + total, nll_count + count
    agreement = [_agreement(r["output"], a["output"]) for r, a in zip(runs, reference, strict=True)]
    return {
        "tokens": tokens,
        "tokens_per_forward": round(tokens / forwards, 3) if forwards else 0.0,
        "tokens_per_s": round(tokens / seconds, 2) if seconds else 0.0,
        "nll_under_base": round(nll_sum / nll_count, 4) if nll_count else 0.0,
        "agreement_with_ar": round(sum(agreement) / len(agreement), 4) if agreement else 0.0,
        "exact_match_with_ar": round(
            sum(r["output"] == a["output"] for r, a in zip(runs, reference, strict=True))
            / max(len(runs), 1),
            4,
        ),
    }


@torch.inference_mode()
def output_nll(model: Transformer, prompt: list[int], output: list[int]) -> tuple[float, int]:
    """Summed NLL of `output` after `prompt` under a causal model, and the token count."""
    if not output:
        return 0.0, 0
    loss = F.cross_entropy(
        answer_logits(model, prompt, output), torch.tensor(output), reduction="sum"
    )
    return float(loss), len(output)


@torch.inference_mode()
def next_token_probabilities(
    model: Transformer, prompt: list[int], output: list[int]
) -> list[float]:
    """The base's probability of each token of `output`, given the prompt and the tokens of
    `output` before it (teacher forcing)."""
    if not output:
        return []
    probs = answer_logits(model, prompt, output).float().softmax(-1)
    return probs.gather(-1, torch.tensor(output)[:, None])[:, 0].tolist()


def answer_logits(model: Transformer, prompt: list[int], answer: list[int]) -> torch.Tensor:
    """[len(answer), vocab]: the logits that predict each answer token, one causal forward
    over prompt + answer (teacher forcing). The caller chooses no_grad or inference mode."""
    ids = torch.tensor([prompt + answer])
    length = ids.shape[1]
    mask = torch.ones(length, length, dtype=torch.bool).tril()[None, None]
    return model(ids, torch.arange(length)[None], mask)[0, len(prompt) - 1 : -1]


def _agreement(output: list[int], reference: list[int]) -> float:
    """Matching positions over the longer of the two (1.0 for two empty outputs)."""
    longest = max(len(output), len(reference))
    if not longest:
        return 1.0
    return sum(a == b for a, b in zip(output, reference, strict=False)) / longest
