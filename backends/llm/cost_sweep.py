"""How the cost of one forward grows with tokens per forward and with context length.

Block diffusion's speed is tokens per forward times forwards per second; the first comes from
the model's training (the conversion issue), the second from here. A decode step feeds a block
of b tokens against a cache of n tokens: reading the weights costs the same for any small b,
attention grows with b·n. The sweep times exactly that step (a static cache filled to n with
random keys, a block of b tokens that attend to all of it and to each other, logits for the
block only) so a block size can be chosen from data. Keys' values do not change the cost, so
no text is prefilled.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch

from backends.llm.kv_cache import StaticKVCache
from backends.llm.transformer import Transformer

BLOCK_SIZES = (1, 4, 8, 16)
CONTEXTS = (256, 512, 1024, 2048, 4096)


@torch.inference_mode()
def ms_per_forward(model: Transformer, block: int, context: int, repeats: int = 5) -> float:
    """Median milliseconds of one decode step: `block` tokens after `context` cached ones."""
    args = model.args
    dtype = model.embed.weight.dtype
    device = model.embed.weight.device
    generator = torch.Generator().manual_seed(0)
    shape = (1, args.num_kv_heads, context, args.head_dim)
    keys = torch.randn(shape, generator=generator).to(device, dtype)
    values = torch.randn(shape, generator=generator).to(device, dtype)
    cache = StaticKVCache(context + block)
    cache.fill_with(keys, values, args.num_layers)
    tokens = torch.randint(0, args.vocab_size, (1, block), generator=generator).to(device)
    positions = torch.arange(context, context + block, device=device)[None]
    mask = torch.ones(1, 1, block, context + block, dtype=torch.bool, device=device)

    def step() -> None:
        model(tokens, positions, mask, cache=cache, commit=False, logits_for=slice(0, block))

    step()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def run_cost_sweep(
    model: Transformer,
    *,
    block_sizes: tuple[int, ...] = BLOCK_SIZES,
    contexts: tuple[int, ...] = CONTEXTS,
    repeats: int = 5,
) -> dict:
    limit = model.args.max_position_embeddings
    usable = [n for n in contexts if n + max(block_sizes) <= limit]
    table = {
        str(n): {str(b): round(ms_per_forward(model, b, n, repeats), 3) for b in block_sizes}
        for n in usable
    }
    report: dict = {
        "block_sizes": list(block_sizes),
        "contexts": usable,
        "ms_per_forward": table,  # context -> block size -> ms
        "ms_per_token_if_every_slot_commits": {
            n: {b: round(ms / int(b), 3) for b, ms in row.items()} for n, row in table.items()
        },
    }
    skipped = [n for n in contexts if n not in usable]
    if skipped:
        report["skipped_contexts"] = {"contexts": skipped, "why": f"the model's context is {limit}"}
    return report


def plot_cost_sweep(sweep: dict, path: Path) -> Path | None:
    """Two panels (cost against context, per block size; against block size, per context);
    None when matplotlib, an optional dependency (`pip install -e '.[bench]'`), is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    table = sweep["ms_per_forward"]
    contexts = [int(n) for n in table]
    blocks = sweep["block_sizes"]
    figure, (by_context, by_block) = plt.subplots(1, 2, figsize=(11, 4.2))
    for b in blocks:
        by_context.plot(contexts, [table[str(n)][str(b)] for n in contexts], "o-", label=f"{b}")
    by_context.set(xscale="log", xlabel="context length (tokens)", ylabel="ms per forward")
    by_context.set_xticks(contexts, [str(n) for n in contexts])
    by_context.minorticks_off()  # a log axis labels its minor ticks too, over the chosen ones
    by_context.legend(title="tokens per forward")
    for n in contexts:
        by_block.plot(blocks, [table[str(n)][str(b)] for b in blocks], "o-", label=f"{n}")
    by_block.set(xlabel="tokens per forward (block size)", ylabel="ms per forward")
    by_block.legend(title="context")
    figure.suptitle(sweep.get("title", "cost of one forward"))
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
