"""The block-diffusion loss of an adapter on records it was not trained on.

Tokens per forward at threshold 0.9 moves in steps and costs minutes of decoding per prompt;
the held-out loss moves smoothly and costs one forward per record, so it is what compares two
recipes after a few dozen steps. The masks are drawn from a fixed seed, so every adapter is
scored on the same masked copies.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from backends.llm.a2d.adapter import load_converted
from backends.llm.a2d.data import read_records, turn_end_id
from backends.llm.a2d.evaluate import answer_logits
from backends.llm.a2d.objective import (
    LossParts,
    ObjectiveConfig,
    block_diffusion_loss,
    build_batch,
    make_document,
)
from backends.llm.loader import load_checkpoint
from ttdr.errors import TrainingDataError


def held_out_loss(
    base: Path,
    adapter: Path,
    data: Path,
    *,
    exclude: Path | None = None,
    row_tokens: int = 1024,
    seed: int = 0,
    masks: str = "random",
) -> dict[str, Any]:
    """Mean masked-token and boundary (first token of a block) cross-entropy of the converted
    model on the records in `data`, leaving out any whose prompt is also in `exclude` (the
    training shards). `masks="suffix"` scores only the mask states left-to-right filling
    passes through (objective.py), the ones decoding with the leftmost fallback meets."""
    converted = load_converted(base, adapter, dtype=torch.float32)
    model, meta = converted.loaded.model, converted.meta
    eos = turn_end_id(converted.loaded.tokenizer, converted.facts)
    mask_id = meta.mask_id
    objective = ObjectiveConfig(meta.block_size, mask_id, eos, masks=masks)
    seen = {r["id"] for r in read_records(exclude)} if exclude is not None else set()
    records = [r for r in read_records(data) if r.get("answer") and r["id"] not in seen]
    generator = torch.Generator().manual_seed(seed)
    total: LossParts | None = None
    used = 0
    with torch.no_grad():
        for record in records:
            doc = make_document(record["prompt"], record["answer"], objective, row_tokens)
            if doc is None:
                continue
            batch = build_batch([[doc]], objective, generator, eos)
            parts = block_diffusion_loss(model, batch, mask_id, scale=1)
            total = parts if total is None else total + parts
            used += 1
    if total is None:
        raise TrainingDataError(
            f"no held-out records in {data} (none, or all of their prompts are in the training "
            "shards): write some with `ttdr train a2d data --out DIR --seed S` using a seed "
            "the training data did not use."
        )
    count = total.masked_count + total.boundary_count
    return {
        "adapter": str(adapter),
        "steps": meta.training.get("steps"),
        "answer_tokens_trained": meta.training.get("answer_tokens"),
        "records": used,
        "masks": masks,
        "loss": round(float(total.loss) / count, 4),
        "masked_loss": round(total.masked, 4),
        "boundary_loss": round(total.boundary, 4),
        "confident_share": round(total.confident_share, 4),  # right and above 0.9, masked slots
        "correct_entropy": round(total.correct_entropy, 4),
        "scored_tokens": count,
    }


def target_confidence(base: Path, data: Path, *, records: int = 48) -> dict[str, Any]:
    """How predictable the answers in `data` are to the base model that wrote them (teacher
    forcing, causal attention): their NLL, the share of tokens it gives a probability above
    0.9 and the share of neighbouring pairs where both are, which bounds what a converted model
    trained on them can commit in parallel at threshold 0.9; and the share that is its argmax
    (below 1.0 where a repetition penalty moved the greedy choice)."""
    loaded = load_checkpoint(base, dtype=torch.float32)
    chosen = [r for r in read_records(data) if r.get("answer")][:records]
    if not chosen:
        raise TrainingDataError(f"no records with answers in {data}: nothing to measure.")
    tokens = confident = pairs = confident_pairs = argmax = 0
    nll = 0.0
    with torch.no_grad():
        for record in chosen:
            probs = answer_logits(loaded.model, record["prompt"], record["answer"]).softmax(-1)
            target = torch.tensor(record["answer"])
            p = probs.gather(-1, target[:, None])[:, 0]
            sure = p > 0.9
            tokens += len(target)
            confident += int(sure.sum())
            pairs += len(target) - 1
            confident_pairs += int((sure[1:] & sure[:-1]).sum())
            argmax += int((probs.argmax(-1) == target).sum())
            nll += float(-p.clamp_min(1e-30).log().sum())
    stats = data / "stats.json"
    penalty = json.loads(stats.read_text()).get("repetition_penalty") if stats.is_file() else None
    return {
        "data": str(data),
        "repetition_penalty": penalty,
        "records": len(chosen),
        "tokens": tokens,
        "nll_under_base": round(nll / tokens, 4),
        "share_above_0.9": round(confident / tokens, 4),
        "pairs_above_0.9": round(confident_pairs / max(pairs, 1), 4),
        "argmax_share": round(argmax / tokens, 4),
    }
