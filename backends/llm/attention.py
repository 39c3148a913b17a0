"""Who may attend to whom, as data: `causal`, `block_causal(block_size)` or `bidirectional`.

Every position of a canvas gets a block id; a query sees a key when the key is real (not
padding) and, unless attention is bidirectional, when the key's block id is not after the
query's. Causal attention is the block-causal rule with blocks of one token.

The prompt's ids follow its own token positions (so a left-padded row keeps its own block
boundaries); the generated region starts a fresh series of blocks at `gen_start`, ordered
after every prompt block, so generated blocks see the whole prompt and never the reverse.
"""

from __future__ import annotations

from typing import Literal

import torch

AttentionKind = Literal["bidirectional", "block_causal", "causal"]
GENERATED_BLOCKS_START = 1 << 40  # above any prompt block id


def block_ids(
    positions: torch.Tensor, gen_start: int, block_size: int, kind: AttentionKind
) -> torch.Tensor:
    """Block id of every canvas slot; `positions` is [batch, length] token positions."""
    size = 1 if kind == "causal" else block_size
    index = torch.arange(positions.shape[1], device=positions.device)
    generated = GENERATED_BLOCKS_START + (index - gen_start).clamp(min=0) // size
    ids = torch.where(index < gen_start, positions // size, generated)
    return ids.expand_as(positions)


def attention_mask(
    kind: AttentionKind,
    query_ids: torch.Tensor,
    key_ids: torch.Tensor,
    key_valid: torch.Tensor | None,
) -> torch.Tensor | None:
    """Boolean [batch, 1, queries, keys] mask, or None when every key is visible."""
    if kind == "bidirectional":
        if key_valid is None or bool(key_valid.all()):
            return None
        allowed = key_valid[:, None, :].expand(-1, query_ids.shape[1], -1)
    else:
        allowed = key_ids[:, None, :] <= query_ids[:, :, None]
        if key_valid is not None:
            allowed = allowed & key_valid[:, None, :]
    # A padding query sees nothing; give it itself-free garbage rather than NaNs from softmax.
    allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
    return allowed[:, None]
