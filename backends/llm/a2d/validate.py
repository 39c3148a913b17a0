"""The block-diffusion loss of an adapter on records it was not trained on.

Tokens per forward at threshold 0.9 moves in steps and costs minutes of decoding per prompt;
the held-out loss moves smoothly and costs one forward per record, so it is what compares two
recipes after a few dozen steps. The masks are drawn from a fixed seed, so every adapter is
scored on the same masked copies.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from backends.llm.a2d.adapter import load_converted
from backends.llm.a2d.data import read_records, turn_end_id
from backends.llm.a2d.objective import (
    LossParts,
    ObjectiveConfig,
    block_diffusion_loss,
    build_batch,
    make_document,
)
from ttdr.errors import TrainingDataError


def held_out_loss(
    base: Path,
    adapter: Path,
    data: Path,
    *,
    exclude: Path | None = None,
    row_tokens: int = 1024,
    seed: int = 0,
) -> dict[str, Any]:
    """Mean masked-token and boundary (first token of a block) cross-entropy of the converted
    model on the records in `data`, leaving out any whose prompt is also in `exclude` (the
    training shards)."""
    converted = load_converted(base, adapter, dtype=torch.float32)
    model, meta = converted.loaded.model, converted.meta
    eos = turn_end_id(converted.loaded.tokenizer, converted.facts)
    mask_id = meta.mask_id
    objective = ObjectiveConfig(meta.block_size, mask_id, eos)
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
        "loss": round(float(total.loss) / count, 4),
        "masked_loss": round(total.masked, 4),
        "boundary_loss": round(total.boundary, 4),
        "scored_tokens": count,
    }
