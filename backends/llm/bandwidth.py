"""The weight-read bound: no forward pass can be faster than reading its weights once.

A decode step on a CPU multiplies a few activation rows by every weight matrix, so its cost
is bounded below by (bytes of weights read) / (memory bandwidth). The bandwidth is measured in
the same process as the benchmark (a large tensor copy, bigger than any cache), so the bound
and the forwards it judges share the machine's state, threads and load.
"""

from __future__ import annotations

import time

import torch
from torch import nn

COPY_BYTES = 256 * 2**20  # well past the last-level cache of any CPU we run on


def copy_bandwidth(nbytes: int = COPY_BYTES, repeats: int = 5) -> float:
    """Bytes moved per second by `Tensor.copy_` (each byte read once and written once); the
    best of `repeats`, since contention only ever slows a copy down."""
    source = torch.ones(nbytes // 4, dtype=torch.float32)
    target = torch.empty_like(source)
    target.copy_(source)  # first touch: page faults are not bandwidth
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        target.copy_(source)
        best = min(best, time.perf_counter() - start)
    return 2 * source.numel() * source.element_size() / best


def weight_bytes_per_forward(model: nn.Module) -> int:
    """Bytes of weights a forward reads: every layer's tensors once (a tied LM head once),
    but not the embedding table, of which a step reads only its tokens' rows."""
    seen: set[int] = set()
    total = 0
    for module in model.modules():
        if isinstance(module, nn.Embedding) or module is model:
            continue
        total += getattr(module, "weight_bytes", 0)  # a packed layer's opaque weight
        for tensor in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
            if tensor is None or tensor.data_ptr() in seen:
                continue
            seen.add(tensor.data_ptr())
            total += tensor.numel() * tensor.element_size()
    return total


def weight_read_bound_ms(model: nn.Module, bandwidth: float) -> float:
    return 1000 * weight_bytes_per_forward(model) / bandwidth
