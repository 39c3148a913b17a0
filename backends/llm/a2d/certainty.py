"""How many tokens per forward the base model's own certainty leaves room for.

A converted model's tokens per forward at threshold T are read against this. A step of
threshold decoding commits a masked slot only when the model gives its token a probability
above T. So, on the base's own greedy answers: how often is the base, given the true text
before a token, surer than T of it, and how many tokens per forward would a block decoder
reach that commits, at every step, the leftmost masked slot of the block and every other
masked slot whose token the base predicted above T? That is what a converted model would get
if it were exactly as sure as its base while seeing as much (it sees masks where the base saw
text, so on that count it gets less). It is a reference, not a bound: the training answers are
the base's greedy choices, a deterministic function of the prompt, so a converted model may
learn to be surer of them than the base's probabilities are (that sharpening is what
certainty-forcing objectives aim at). When the reference sits near 1 for a block size and
threshold, several tokens per forward there need that sharpening, not only more of the same
training.
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
    the tokens per forward of that decoder per block size and threshold (summed over answers)."""
    tokens = [p for answer in probabilities for p in answer]
    report: dict[str, dict[str, float]] = {
        "share_above": {
            str(t): round(sum(p > t for p in tokens) / len(tokens), 4) if tokens else 0.0
            for t in thresholds
        }
    }
    for size in block_sizes:
        per_threshold = {}
        for threshold in thresholds:
            forwards = sum(forwards_needed(answer, size, threshold) for answer in probabilities)
            per_threshold[str(threshold)] = round(len(tokens) / forwards, 3) if forwards else 0.0
        report[f"tokens_per_forward_block_{size}"] = per_threshold
    return report
