"""How many tokens per forward the base model's own certainty leaves room for.

A converted model's tokens per forward at threshold T are read against this. A step of
threshold decoding commits a masked slot only when the model gives its token a probability
above T; a model converted from an AR base cannot be surer of a slot than the base is when it
sees more (the true text before the slot) than the converted model does (masks there). So on
the base's own greedy answers: how often is the base, given the true prefix, surer than T of
the next token, and how many tokens per forward would a block decoder reach that commits, at
every step, the leftmost masked slot of the block and every other masked slot whose token the
base predicted above T? The second number is an optimistic reference (the converted model's
view of a slot, with masks before it, is vaguer than the base's with the text), not a bound
and not a target: when it sits near 1 at a block size and threshold, no training of that
recipe reaches several tokens per forward there on that text.
"""

from __future__ import annotations

from collections.abc import Sequence


def forwards_needed(probabilities: Sequence[float], block_size: int, threshold: float) -> int:
    """Steps of the block decoder described above on one answer, given the base's
    probability of each of its tokens."""
    if block_size < 1:
        raise ValueError("block_size must be at least 1")
    forwards = 0
    for start in range(0, len(probabilities), block_size):
        block = probabilities[start : start + block_size]
        masked = list(range(len(block)))
        while masked:  # the leftmost is committed; so is every other slot surer than T
            forwards += 1
            masked = [i for i in masked[1:] if block[i] <= threshold]
    return forwards


def certainty_report(
    probabilities: Sequence[Sequence[float]],
    block_sizes: Sequence[int],
    thresholds: Sequence[float],
) -> dict[str, dict[str, float]]:
    """Over several answers: the share of tokens the base predicts above each threshold, and
    the ceiling's tokens per forward per block size and threshold (summed over answers)."""
    tokens = [p for answer in probabilities for p in answer]
    report: dict[str, dict[str, float]] = {
        "share_above": {
            str(t): round(sum(p > t for p in tokens) / len(tokens), 4) if tokens else 0.0
            for t in thresholds
        }
    }
    for size in block_sizes:
        ceilings = {}
        for threshold in thresholds:
            forwards = sum(forwards_needed(answer, size, threshold) for answer in probabilities)
            ceilings[str(threshold)] = round(len(tokens) / forwards, 3) if forwards else 0.0
        report[f"ceiling_block_{size}"] = ceilings
    return report
