"""What decoding needs to know about a model besides its weights, resolved once.

A family states its defaults as a `ModelFacts` (data, see `families.py`); the loader resolves
them against the checkpoint (config.json's mask id and block size, the tokenizer's end ids) and
returns the result. Everything downstream reads the one object: the denoising loop, the engine,
the benchmark, and `describe()`, the one-line description `ttdr models`, the UI and the run
stats show. The rules that follow from the facts (which KV cache fits the attention, the
default decoding policy) are written here and nowhere else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from backends.llm.attention import AttentionKind
from backends.llm.decoding import DecodePolicy, Fallback
from ttdr.errors import ModelUnavailableError

CacheMode = Literal["none", "exact", "prefix", "dual"]


@dataclass(frozen=True)
class ModelFacts:
    attention: AttentionKind
    # The attention's block size (block-causal models are trained with one) and the default
    # decoding block; 1 with causal attention is plain autoregressive decoding.
    block_size: int
    logit_shift: bool  # token i is predicted from the logits at i-1 (AR-initialised models)
    mask_token: int | None  # None: the model has no mask token (an autoregressive model)
    eos_ids: tuple[int, ...]
    sub_block_size: int | None = None  # Fast-dLLM v2 decodes a block in sub-blocks
    # LLaDA-Instruct floods the canvas with EOS: rank EOS candidates last (paper App. B.4).
    eos_last: bool = False
    threshold: float = 0.9  # the default confidence threshold
    fallback: Fallback = "best"  # what a threshold step commits when nothing passes

    def __post_init__(self) -> None:
        if self.block_size < 1:
            raise ValueError("block_size must be at least 1")
        if self.sub_block_size is not None and self.sub_block_size < 1:
            raise ValueError("sub_block_size must be at least 1")

    @property
    def mask_id(self) -> int:
        """The id empty canvas slots hold: the mask token, or, for a model without one, an end
        id. A single-slot block is filled from the previous position, so any placeholder works,
        and an end id is one a reply is cut at anyway."""
        if self.mask_token is not None:
            return self.mask_token
        if not self.eos_ids:
            raise ModelUnavailableError(
                "this model has neither a mask token nor an end-of-turn token: set "
                "mask_token_id or eos_token_id in its config.json."
            )
        return min(self.eos_ids)

    @property
    def mask_is_placeholder(self) -> bool:
        """True when `mask_id` only marks empty slots; a real mask token is never a valid
        prediction."""
        return self.mask_token is None

    @property
    def cache(self) -> CacheMode:
        """The KV cache that fits the attention: bidirectional attention has no exact cache, so
        it gets Fast-dLLM's approximate dual cache; causal and block-causal ones an exact one."""
        return "dual" if self.attention == "bidirectional" else "exact"

    @property
    def policy(self) -> DecodePolicy:
        """The default decoding policy for this model."""
        return DecodePolicy(
            block_size=self.block_size,
            threshold=self.threshold,
            sub_block_size=self.sub_block_size,
            eos_last=self.eos_last,
            fallback=self.fallback,
        )

    def describe(self, policy: DecodePolicy | None = None, cache: CacheMode | None = None) -> str:
        """How the model decodes, under `policy` and `cache` (default: its own), in one line."""
        policy = policy or self.policy
        cache = cache or self.cache
        if self.attention == "causal" and policy.block_size == 1:
            return f"autoregressive: one token per forward pass ({cache} KV cache)"
        kind = "block diffusion" if self.attention == "block_causal" else "masked diffusion"
        rule = (
            f"threshold {policy.threshold}"
            + (", else the leftmost" if policy.fallback == "leftmost" else "")
            if policy.threshold is not None
            else f"{policy.steps_per_block} steps per block"
        )
        sub_block = f", sub-block {policy.sub_block_size}" if policy.sub_block_size else ""
        return f"{kind}: block {policy.block_size}{sub_block}, {rule}, {cache} KV cache"
