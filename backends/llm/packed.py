"""bfloat16 linear layers in oneDNN's packed weight layout, for decoding on a CPU.

A decode step multiplies a few rows of activations by every weight matrix once, so its cost is
how fast the matmul kernel streams the weights. On a CPU with native bfloat16 (AVX512-BF16 or
AMX), PyTorch's plain `F.linear` streams a one-row product at 13-15 GB/s, half the machine's
copy bandwidth. The same weights reordered once, at load, into oneDNN's blocked layout
(`torch.ops.mkldnn._reorder_linear_weight`, what torch.compile's CPU backend emits for frozen
linear weights) and multiplied by `torch.ops.mkldnn._linear_pointwise` stream at 20-29 GB/s:
1.7-1.9x faster for 1-16 rows (SmolLM2-135M's shapes, two cores, measured 2026-12-02). Outputs
are bit-identical to `F.linear` up to 32 rows and differ in the last bit beyond (a prefill's
rows are blocked differently), which is why a greedy reply is checked against the plain path
rather than assumed equal.

Only bfloat16 pays: float32 weights packed the same way were 0.8-1.4x, so float32 keeps
`nn.Linear`. The packed tensor is opaque (no storage, no `data_ptr`), so it is kept as a plain
attribute rather than a buffer: `state_dict` and `.to()` never see it, and the layer reports
the bytes it reads through `weight_bytes`. Packing is for inference only (no autograd).
"""

from __future__ import annotations

import itertools
import weakref

import torch
from torch import nn

from backends.llm.transformer import Transformer


def packing_supported(device: torch.device, dtype: torch.dtype) -> bool:
    """Whether oneDNN multiplies `dtype` natively here: bfloat16 on a CPU with AVX512-BF16/AMX."""
    if device.type != "cpu" or dtype != torch.bfloat16 or not torch.backends.mkldnn.is_available():
        return False
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


class PackedLinear(nn.Module):
    """`nn.Linear` whose weight lives in oneDNN's packed layout."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach()
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.weight_bytes = weight.numel() * weight.element_size()
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight, 1)
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.key = next(_keys)
        _LIVE[self.key] = self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if torch.compiler.is_compiling():
            return torch.ops.ttdr.packed_linear(x, self.key, self.out_features)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


# torch.compile (`compiled.py`) cannot trace a call on the opaque packed tensor, so compiled
# code reaches the same kernel through an operator that names the layer by a number instead.
_keys = itertools.count()
_LIVE: weakref.WeakValueDictionary[int, PackedLinear] = weakref.WeakValueDictionary()


@torch.library.custom_op("ttdr::packed_linear", mutates_args=())
def packed_linear(x: torch.Tensor, key: int, out_features: int) -> torch.Tensor:
    layer = _LIVE[key]
    return torch.ops.mkldnn._linear_pointwise(x, layer.packed, layer.bias, "none", [], "")


@packed_linear.register_fake
def _packed_linear_shape(x: torch.Tensor, key: int, out_features: int) -> torch.Tensor:
    return x.new_empty((*x.shape[:-1], out_features))


def pack_linears(model: Transformer) -> Transformer:
    """Replace every bfloat16 `nn.Linear` (projections and LM head) with its packed version.

    A tied LM head gets its own packed copy (the embedding table keeps the plain one, which a
    step reads row by row): 56 MB more for SmolLM2-135M, for a vocabulary projection that is a
    fifth of the weights a step reads.
    """
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, nn.Linear) and child.weight.dtype == torch.bfloat16
    ]
    with torch.no_grad():
        for parent, name, child in targets:
            setattr(parent, name, PackedLinear(child))
    return model
