"""Guards against the loops small models fall into under greedy decoding."""

from __future__ import annotations

import torch

LOOP_NGRAM = 12  # tokens; a second occurrence of such a run means the model is looping


def penalise_repeats(logits: torch.Tensor, generated: list[int], penalty: float) -> torch.Tensor:
    """CTRL-style repetition penalty (Keskar et al. 2019), over generated tokens only: the
    prompt holds the sources, and copying their words is what an answer should do."""
    if penalty == 1.0 or not generated:
        return logits
    ids = torch.tensor(sorted(set(generated)), device=logits.device)
    picked = logits[..., ids]
    logits = logits.clone()
    logits[..., ids] = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits


def cut_at_loop(tokens: list[int]) -> tuple[list[int], bool]:
    """Tokens up to the second occurrence of a repeated `LOOP_NGRAM` run, and whether one was
    found; the repeat itself is dropped."""
    seen: set[tuple[int, ...]] = set()
    for end in range(LOOP_NGRAM, len(tokens) + 1):
        run = tuple(tokens[end - LOOP_NGRAM : end])
        if run in seen:
            return tokens[: end - LOOP_NGRAM], True
        seen.add(run)
    return tokens, False
