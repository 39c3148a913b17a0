"""Draw docs/a2d/learning-curve.png from docs/a2d/learning-curve.json.

`python docs/a2d/plot_learning_curve.py` (needs matplotlib: `pip install -e ".[bench]"`).
Training losses are per log window of the fit's train.jsonl; tokens per forward come from
`ttdr train a2d eval`, held-out losses from `ttdr train a2d loss`.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent


def main() -> None:
    data = json.loads((HERE / "learning-curve.json").read_text())
    log = data["train_log"]
    thousands = [r["tokens"] / 1000 for r in log]
    fig, (losses, speed, held) = plt.subplots(1, 3, figsize=(15, 3.8))
    losses.plot(thousands, [r["masked_loss"] for r in log], label="masked loss (noisy copies)")
    losses.plot(thousands, [r["boundary_loss"] for r in log], label="block-first-token (AR) loss")
    for segment in data.get("segments", [])[1:]:
        losses.axvline(segment["from_tokens"] / 1000, color="grey", linestyle=":", linewidth=1)
    losses.set(xlabel="answer tokens seen (thousands)", ylabel="cross-entropy (nats)", ylim=(0, 8))
    losses.legend()
    for key, label in (
        ("ttdr_calls/threshold_0.9", "ttdr calls, thr 0.9"),
        ("factual/threshold_0.9", "factual, thr 0.9"),
        ("ttdr_calls/threshold_0.7", "ttdr calls, thr 0.7"),
    ):
        points = [
            (e["answer_tokens_seen"] / 1000, e[key]["tokens_per_forward"])
            for e in data["evals"]
            if key in e  # an eval may have run one prompt set only
        ]
        speed.plot(*zip(*points, strict=True), marker="o", label=label)
    speed.axhline(2.5, color="grey", linestyle="--", label="target 2.5")
    speed.set(xlabel="answer tokens seen (thousands)", ylabel="tokens per forward", ylim=(0, 3))
    speed.legend()
    for key, label in (
        ("held_out", "answers written at penalty 1.2"),
        ("held_out_p11", "answers written at penalty 1.1"),
        ("held_out_p11_s5", "159 answers at 1.1 (AVX2 machine)"),
        ("held_out_p11_s6", "153 answers at 1.1 (AVX512 machine)"),
        ("held_out_p11_s8", "158 answers at 1.1 (2026-12-04 machine)"),
        ("held_out_p11_s9", "156 answers at 1.1 (2026-12-04 AMD machine)"),
    ):
        points = [(h["answer_tokens_trained"] / 1000, h["loss"]) for h in data.get(key, [])]
        if points:
            held.plot(*zip(*points, strict=True), marker="o", label=label)
    held.legend()
    held.set(xlabel="answer tokens seen (thousands)", ylabel="held-out loss (nats)")
    held.set_title("held-out block-diffusion loss", fontsize=10)
    for axis in (losses, speed, held):
        axis.grid(alpha=0.3)
    fig.suptitle(
        "smollm2-135m-a2d: block 4, LoRA r16, 1 CPU thread (docs/a2d/learning-curve.json); "
        "dotted: the segments listed there (new machine, no prompt gradient, new data)"
    )
    fig.tight_layout()
    fig.savefig(HERE / "learning-curve.png", dpi=100)


if __name__ == "__main__":
    main()
