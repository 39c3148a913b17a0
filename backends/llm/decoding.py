"""Decoding policies as data, and the one function that applies them to a denoising step.

A step sees the logits of the masked positions in the active window and decides which of
them to commit (Fast-dLLM's confidence threshold, LLaDA's fixed steps with low-confidence
remasking, random remasking, margin or entropy ranking). Committed tokens are never
re-masked. Everything a policy needs is a field here, so the decode loops stay policy-free.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import torch

Ranking = Literal["confidence", "margin", "entropy", "random"]
Fallback = Literal["best", "leftmost"]


@dataclass(frozen=True)
class DecodePolicy:
    block_size: int = 32
    # Commit every masked position whose score exceeds this (always at least the best one);
    # None switches to a fixed number of steps per block.
    threshold: float | None = 0.9
    steps_per_block: int | None = None
    ranking: Ranking = "confidence"
    # The one position a threshold step commits when none passes: the best-ranked ("best",
    # Fast-dLLM), or the leftmost masked one, which turns a step into the autoregressive step
    # of a model converted from an AR one: its far slots are the least trained and, in a
    # partly converted model, confidently wrong (docs/a2d/MODEL_CARD.md measures both).
    fallback: Fallback = "best"
    temperature: float = 0.0
    sub_block_size: int | None = None  # Fast-dLLM v2 decodes a block in sub-blocks
    # LLaDA-Instruct floods the canvas with EOS: rank EOS candidates last (paper App. B.4).
    eos_last: bool = False
    # Small models loop under greedy decoding; >1 penalises tokens already generated.
    repetition_penalty: float = 1.0

    def __post_init__(self) -> None:
        if self.block_size < 1:
            raise ValueError("block_size must be at least 1")
        if self.threshold is None and not self.steps_per_block:
            raise ValueError("a policy needs a threshold or steps_per_block")
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ValueError("threshold must lie in [0, 1]")

    def with_(self, **changes) -> DecodePolicy:
        return replace(self, **changes)


def propose_tokens(
    logits: torch.Tensor, temperature: float, generator: torch.Generator | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Candidate token and its probability for each position ([..., vocab] logits).

    Sampling uses Gumbel-max in float64, as LLaDA does, so low temperatures stay exact.
    """
    probs = torch.softmax(logits.double(), dim=-1)
    if temperature <= 0:
        confidence, tokens = probs.max(dim=-1)
        return tokens, confidence
    uniform = torch.rand(
        logits.shape, dtype=torch.float64, generator=generator, device=logits.device
    )
    gumbel = -torch.log(-torch.log(uniform.clamp_min(1e-20)))
    tokens = (logits.double() / temperature + gumbel).argmax(dim=-1)
    return tokens, probs.gather(-1, tokens[..., None])[..., 0]


def ranking_scores(
    logits: torch.Tensor,
    confidence: torch.Tensor,
    ranking: Ranking,
    generator: torch.Generator | None,
) -> torch.Tensor:
    """Higher is surer. Margin: top-1 minus top-2 probability; entropy: negated entropy."""
    if ranking == "confidence":
        return confidence
    if ranking == "random":
        return torch.rand(
            confidence.shape, dtype=torch.float64, generator=generator, device=confidence.device
        )
    probs = torch.softmax(logits.double(), dim=-1)
    if ranking == "margin":
        top2 = probs.topk(2, dim=-1).values
        return top2[..., 0] - top2[..., 1]
    return (probs * probs.clamp_min(1e-30).log()).sum(dim=-1)  # -entropy


def choose_commits(
    scores: torch.Tensor,
    confidence: torch.Tensor,
    masked: torch.Tensor,
    policy: DecodePolicy,
    scheduled: int,
) -> torch.Tensor:
    """Which masked positions to commit this step, per row ([batch, window] booleans).

    Threshold policies commit every position whose probability exceeds the threshold, plus
    the best-ranked (or, with `fallback="leftmost"`, the leftmost masked) one so that every
    step makes progress; fixed-step policies commit the
    `scheduled` best-ranked (the rest stay masked: low-confidence remasking). Rows with
    nothing masked commit nothing.
    """
    scores = scores.masked_fill(~masked, float("-inf"))
    if policy.threshold is not None:
        commit = masked & (confidence > policy.threshold)
    else:
        count = masked.sum(-1).clamp(max=scheduled)
        order = scores.argsort(dim=-1, descending=True, stable=True)
        ranks = torch.empty_like(order)
        positions = torch.arange(order.shape[-1], device=order.device).expand_as(order)
        ranks.scatter_(-1, order, positions)
        commit = masked & (ranks < count[:, None])
    if policy.threshold is not None and policy.fallback == "leftmost":
        forced = masked.int().argmax(dim=-1, keepdim=True)  # the first True of each row
    else:
        forced = scores.argmax(dim=-1, keepdim=True)
    best = torch.zeros_like(masked).scatter(-1, forced, True)
    return commit | (best & masked.any(dim=-1, keepdim=True))


def transfer_schedule(masked_count: int, steps: int) -> list[int]:
    """LLaDA's linear schedule: the block's masked count spread evenly, remainder first."""
    steps = max(1, min(steps, masked_count)) if masked_count else 1
    base, extra = divmod(masked_count, steps)
    return [base + (1 if i < extra else 0) for i in range(steps)]
