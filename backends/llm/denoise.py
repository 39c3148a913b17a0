"""The block-parallel denoising loop: fill masked windows of a canvas, block by block.

One loop serves generation, infill and rewrite: the caller builds a canvas (prompt, document,
masks) and names the windows to fill; nothing outside them is ever written. How the model is
called per step depends on the cache mode, and each mode has the plain reference beside it:

- `none`: the whole canvas every step (the reference, and naive diffusion);
- `exact` (causal / block-causal): the finished prefix's keys and values are committed once,
  a step feeds only the current block (SDAR, Fast-dLLM v2); identical to `none`;
- `prefix` / `dual` (bidirectional): keys and values computed at a refresh point are reused
  until the next one (Fast-dLLM v1); the prefix cache re-feeds the block and everything after
  it, the dual cache only the block. `refresh="step"` refreshes every step, which makes both
  equal to `none`; the default refreshes at each block boundary.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import Literal

import torch

from backends.llm.attention import attention_mask, block_ids
from backends.llm.decoding import (
    DecodePolicy,
    choose_commits,
    propose_tokens,
    ranking_scores,
    transfer_schedule,
)
from backends.llm.facts import CacheMode, ModelFacts
from backends.llm.kv_cache import KVCache, StaticKVCache
from backends.llm.repetition import penalise_repeats
from backends.llm.transformer import Transformer
from ttdr.errors import RunStopped

# Prompts longer than this are prefilled into an exact cache in pieces: a stop request is seen
# between pieces, and attention scores never span the whole of a long prompt at once.
PREFILL_CHUNK = 1024


@dataclass
class Canvas:
    """Token ids [batch, length]; `valid` is False on left padding; masks are `mask_id`."""

    tokens: torch.Tensor
    valid: torch.Tensor
    gen_start: int  # where block numbering for generated text starts (see attention.py)

    @property
    def positions(self) -> torch.Tensor:
        return (self.valid.long().cumsum(-1) - 1).clamp(min=0)


@dataclass
class DenoiseStats:
    forward_passes: int = 0
    committed: int = 0
    steps: int = 0
    seconds: float = 0.0
    commits_per_step: list[int] = field(default_factory=list)


class Denoiser:
    def __init__(
        self,
        model: Transformer,
        facts: ModelFacts,
        *,
        cache: CacheMode = "none",
        refresh: Literal["block", "step"] = "block",
        static_cache: bool = True,
        skip_unread_slot: bool = True,
    ) -> None:
        if cache == "exact" and facts.attention == "bidirectional":
            raise ValueError("an exact cache needs causal or block-causal attention")
        if cache in ("prefix", "dual") and facts.attention != "bidirectional":
            raise ValueError("prefix/dual caches are for bidirectional models; use 'exact'")
        self.model = model
        self.facts = facts
        self.cache_mode = cache
        self.refresh = refresh
        # The exact cache preallocated at the canvas's length (False: grown by concatenation
        # every step, the reference it is tested against).
        self.static_cache = static_cache
        # Causal attention: the block's last slot is not fed when nothing reads it (False:
        # fed anyway, the plain path the benchmark's `--plain` measures against).
        self.skip_unread_slot = skip_unread_slot

    def fill(
        self,
        canvas: Canvas,
        blocks: list[tuple[int, int]],
        policy: DecodePolicy,
        *,
        seed: int | None = None,
        stop: Callable[[int, torch.Tensor], bool] | None = None,
        cancel: threading.Event | None = None,
    ) -> DenoiseStats:
        """Denoise the masked slots of each block, left to right, in place."""
        stats = DenoiseStats()
        for _ in self.fill_blocks(
            canvas, blocks, policy, stats, seed=seed, stop=stop, cancel=cancel
        ):
            pass
        return stats

    def fill_blocks(
        self,
        canvas: Canvas,
        blocks: list[tuple[int, int]],
        policy: DecodePolicy,
        stats: DenoiseStats,
        *,
        seed: int | None = None,
        stop: Callable[[int, torch.Tensor], bool] | None = None,
        cancel: threading.Event | None = None,
    ) -> Iterator[int]:
        """Like `fill`, yielding the end of each finished block (for streaming).

        `stop(end, tokens)` runs after each block; True ends early (e.g. every row has
        produced its end-of-turn token). `cancel` is checked before every forward pass: once
        set, `RunStopped` is raised, so a stopped run stops within one forward, not one call.
        """
        start_time = time.perf_counter()
        rng = None
        if policy.temperature > 0:
            rng = torch.Generator(device=canvas.tokens.device)
            rng.manual_seed(seed or 0)
        state = _CacheState(cancel=cancel)
        for start, end in blocks:
            # Entered per block, not around the loop: a suspended generator must not leave
            # inference mode switched on in its caller's code.
            with torch.inference_mode():
                self._open_block(canvas, start, end, state, stats)
                for sub_start, sub_end in _sub_windows(start, end, policy.sub_block_size):
                    self._fill_window(
                        canvas, start, end, sub_start, sub_end, policy, rng, state, stats
                    )
            stats.seconds += time.perf_counter() - start_time
            yield end
            start_time = time.perf_counter()
            if stop is not None and stop(end, canvas.tokens):
                break

    # -- one window ------------------------------------------------------------------------

    def _fill_window(self, canvas, start, end, sub_start, sub_end, policy, rng, state, stats):
        window = slice(sub_start, sub_end)
        masked = canvas.tokens[:, window] == self.facts.mask_id
        schedule = transfer_schedule(int(masked.sum(-1).max()), policy.steps_per_block or 1)
        step = 0
        while bool(masked.any()):
            state.check_cancel()
            logits = self._window_logits(canvas, start, end, state, stats)
            logits = logits[:, sub_start - start : sub_end - start]
            if not self.facts.mask_is_placeholder:
                logits[..., self.facts.mask_id] = float("-inf")
            if policy.repetition_penalty != 1.0:
                logits = self._penalise_generated(canvas, sub_end, logits, policy)
            tokens, confidence = propose_tokens(logits, policy.temperature, rng)
            scores = ranking_scores(logits, confidence, policy.ranking, rng)
            if policy.eos_last:
                is_eos = _isin(tokens, self.facts.eos_ids)
                scores = torch.where(is_eos, scores - 1e9, scores)
                confidence = torch.where(is_eos, torch.zeros_like(confidence), confidence)
            scheduled = schedule[min(step, len(schedule) - 1)]
            commit = choose_commits(scores, confidence, masked, policy, scheduled)
            canvas.tokens[:, window] = torch.where(commit, tokens, canvas.tokens[:, window])
            masked = masked & ~commit
            stats.steps += 1
            stats.committed += int(commit.sum())
            stats.commits_per_step.append(int(commit.sum()))
            step += 1

    def _penalise_generated(self, canvas, upto, logits, policy) -> torch.Tensor:
        rows = []
        for row, row_logits in zip(canvas.tokens[:, canvas.gen_start : upto], logits, strict=True):
            generated = row[row != self.facts.mask_id].tolist()
            rows.append(penalise_repeats(row_logits, generated, policy.repetition_penalty))
        return torch.stack(rows)

    # -- model calls per cache mode --------------------------------------------------------

    def _window_logits(self, canvas, start, end, state, stats) -> torch.Tensor:
        """Next-token-shifted (where the family needs it) logits for slots [start, end).

        Only the slots a step reads go through the vocabulary projection: the block and the
        slot before it, never the prompt or the finished slots fed along (in SmolLM2-135M the
        projection is a fifth of the weights, so a prompt's logits were a fifth of a prefill).
        """
        mode = self.cache_mode
        if mode == "none":
            first = max(start - 1, 0)
            raw = self.forward(canvas, 0, canvas.tokens.shape[1], stats, logits_for=(first, end))
            edge = raw[:, 0] if start else None
            return self.shift_logits(raw[:, start - first :], edge)
        if mode == "exact":
            # Finished slots not yet in the cache ride along with this step and are committed
            # by it, so a block costs its steps and nothing more (one forward per token at
            # block size 1, like autoregressive decoding).
            self._prefill_in_chunks(canvas, start, state, stats)
            fed = state.cache.length
            ahead = start - fed  # finished slots fed along, before the block
            # With a logit shift the block is predicted by slots [start-1, end-1); once the
            # slot before it is cached, its logits are the ones kept from when it was fed.
            shifted = self.facts.logit_shift and ahead > 0
            needed = (ahead - 1, end - fed - 1) if shifted else (ahead, end - fed)
            # Under causal attention nothing before the block's last slot attends to it, and
            # a shifted block is predicted from [start-1, end-1): that slot need not be fed.
            # At block size 1 (autoregressive decoding) this halves a step's tokens, and on
            # a CPU a 2-token matmul costs 1.5-2x a 1-token one while reading the same bytes.
            causal = self.facts.attention == "causal"
            last = end - 1 if shifted and causal and self.skip_unread_slot else end
            raw = self.forward(
                canvas, fed, last, stats, cache=state.cache, commit=ahead, logits_for=needed
            )
            if shifted:
                state.edge = raw[:, 0]
                return raw
            return self.shift_logits(raw, state.edge)
        if self.refresh == "step":
            self._refresh(canvas, start, end, state, stats)
            state.fresh_window = False  # go through the cache, so the test of it means something
        elif state.fresh_window:  # the refresh at the block boundary computed these logits
            state.fresh_window = False
            return self.shift_logits(state.window_raw, state.edge)
        if mode == "prefix":
            length = canvas.tokens.shape[1]
            raw = self.forward(
                canvas, start, length, stats, cache=state.cache, logits_for=(0, end - start)
            )
            return self.shift_logits(raw, state.edge)
        raw = self.forward(canvas, start, end, stats, cache=state.cache, slot=start)
        return self.shift_logits(raw, state.edge)

    def _prefill_in_chunks(self, canvas, start, state, stats) -> None:
        """Cache all but the last `PREFILL_CHUNK` slots before `start`, a chunk per forward."""
        while start - state.cache.length > PREFILL_CHUNK:
            fed = state.cache.length
            self.forward(
                canvas, fed, fed + PREFILL_CHUNK, stats, cache=state.cache, commit=True,
                logits_for=(0, 0),
            )  # fmt: skip
            state.check_cancel()

    def _open_block(self, canvas, start, end, state, stats) -> None:
        if self.cache_mode == "exact" and state.cache is None:
            # The prompt is prefilled by the first step's forward.
            length = canvas.tokens.shape[1]
            # One slot more than the canvas: the last step's view then never spans the whole
            # buffer, which compiled steps (`compiled.py`) would treat as one more shape.
            state.cache = StaticKVCache(length + 1) if self.static_cache else KVCache()
        elif self.cache_mode in ("prefix", "dual") and self.refresh == "block":
            self._refresh(canvas, start, end, state, stats)

    def _refresh(self, canvas, start, end, state, stats) -> None:
        """Recompute the whole canvas; keep its keys/values and the block's logits."""
        state.cache = KVCache()
        length, first = canvas.tokens.shape[1], max(start - 1, 0)
        raw = self.forward(
            canvas, 0, length, stats, cache=state.cache, commit=True, logits_for=(first, end)
        )
        if self.cache_mode == "prefix":
            state.cache.truncate(start)
        state.window_raw = raw[:, start - first :]
        state.edge = raw[:, 0] if start else None
        state.fresh_window = True

    def forward(
        self,
        canvas: Canvas,
        start: int,
        end: int,
        stats: DenoiseStats,
        *,
        cache: KVCache | StaticKVCache | None = None,
        slot: int | None = None,
        commit: bool | int = False,
        logits_for: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """Raw logits for canvas slots [start, end), attending to the cache where given;
        `logits_for` (offsets from `start`) keeps only those slots' logits."""
        facts = self.facts
        ids = block_ids(canvas.positions, canvas.gen_start, facts.block_size, facts.attention)
        cached = cache.length if cache is not None else 0
        if cache is None:
            keys = slice(start, end)
        elif slot is None:
            keys = slice(0, cached + (end - start))
        else:
            keys = slice(0, max(cached, end))
        mask = attention_mask(
            self.facts.attention, ids[:, start:end], ids[:, keys], canvas.valid[:, keys]
        )
        stats.forward_passes += 1
        return self.model(
            canvas.tokens[:, start:end],
            canvas.positions[:, start:end],
            mask,
            cache=cache,
            slot=slot,
            commit=commit,
            logits_for=None if logits_for is None else slice(*logits_for),
        )

    def shift_logits(self, raw: torch.Tensor, edge: torch.Tensor | None) -> torch.Tensor:
        """Dream and Fast-dLLM v2 predict slot i from position i-1, like their AR parents."""
        if not self.facts.logit_shift:
            return raw
        first = edge[:, None] if edge is not None else raw[:, :1]
        return torch.cat((first, raw[:, :-1]), dim=1)


@dataclass
class _CacheState:
    cache: KVCache | StaticKVCache | None = None
    edge: torch.Tensor | None = None  # raw logits of the slot just before the block
    window_raw: torch.Tensor | None = None
    fresh_window: bool = False
    cancel: threading.Event | None = None

    def check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise RunStopped("the run was stopped")


def _sub_windows(start: int, end: int, size: int | None) -> list[tuple[int, int]]:
    if not size or size >= end - start:
        return [(start, end)]
    return [(s, min(s + size, end)) for s in range(start, end, size)]


def _isin(tokens: torch.Tensor, ids: Collection[int]) -> torch.Tensor:
    return torch.isin(tokens, torch.tensor(sorted(ids), device=tokens.device))
