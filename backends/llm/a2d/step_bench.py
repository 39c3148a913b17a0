"""How long a training step's forward and backward take in each layout, on the run's own data.

The fit's throughput is the scarce resource (CPU-hours per million answer tokens), so a change
to how a step is computed is measured here on the same documents and masks, every layout in
one process and interleaved (A B C, then C B A) so that a neighbour's load falls on both alike.
No optimizer step is taken: the trainable weights stay as loaded.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from backends.llm.a2d.adapter import inner_model, store_frozen_projections
from backends.llm.a2d.objective import block_diffusion_loss, build_batch, pack_rows
from backends.llm.a2d.trainer import Trainer

LAYOUTS = ("packed", "documents", "documents_frozen_prompt", "documents_frozen_prompt_bf16")


def compare_step_layouts(trainer: Trainer, steps: int) -> dict[str, Any]:
    """Seconds per step for packed rows (one forward over every row), one document at a time
    (what `Trainer.step` computes), one document at a time with its prompt computed without
    gradient (the `prompt_grad=False` recipe), that under bfloat16 autocast (which pays only
    where the CPU multiplies bfloat16 natively), the slots each computes, and the bfloat16
    loss's difference from the float32 one on the same masks."""
    c = trainer.config
    seconds = dict.fromkeys(LAYOUTS, 0.0)
    slots = dict.fromkeys(LAYOUTS, 0)
    answer_tokens = 0
    losses = {"float32": 0.0, "bfloat16": 0.0}
    bf16 = c.bf16
    for index in range(steps):
        documents = trainer.next_documents()
        masks = trainer.generator.get_state()
        order = LAYOUTS if index % 2 == 0 else LAYOUTS[::-1]
        for layout in order:
            trainer.generator.set_state(masks)  # the same masks for every layout
            trainer.optimizer.zero_grad(set_to_none=True)
            c.bf16 = layout.endswith("_bf16")
            # bfloat16 keeps the frozen weights cast once, as a fit does (not timed: once a run)
            former = store_frozen_projections(trainer.model, torch.bfloat16) if c.bf16 else {}
            start = time.perf_counter()
            if layout == "packed":
                rows = pack_rows(documents, c.row_tokens, c.copies)
                batch = build_batch(rows, trainer.objective, trainer.generator, trainer.pad_id)
                parts = block_diffusion_loss(inner_model(trainer.model), batch, trainer.mask_id)
                parts.loss.backward()
                slots["packed"] += batch.tokens.numel()  # padding included: it is computed
            else:
                prompt_grad = layout == "documents"
                parts, answer, stream = trainer.loss_and_backward(documents, prompt_grad)
                slots[layout] += stream
                answer_tokens += answer if prompt_grad else 0
                if not prompt_grad:
                    losses["bfloat16" if c.bf16 else "float32"] += float(parts.loss) / steps
            seconds[layout] += time.perf_counter() - start
            for weight, data in former.items():
                weight.data = data
    c.bf16 = bf16
    trainer.optimizer.zero_grad(set_to_none=True)
    return {
        "steps": steps,
        "threads": torch.get_num_threads(),
        "row_tokens": c.row_tokens,
        "rows": c.rows,
        "answer_tokens_per_step": round(answer_tokens / steps, 1),
        "s_per_step": {k: round(v / steps, 2) for k, v in seconds.items()},
        "answer_tokens_per_s": {k: round(answer_tokens / v, 2) for k, v in seconds.items()},
        "slots_per_step": {k: round(v / steps, 1) for k, v in slots.items()},
        "frozen_prompt_loss": {k: round(v, 4) for k, v in losses.items()},
        "speedup_vs_packed": {
            k: round(seconds["packed"] / v, 3) for k, v in seconds.items() if k != "packed"
        },
    }
