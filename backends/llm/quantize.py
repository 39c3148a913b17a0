"""Weight-only int8 for the linear layers (`TTDR_DTYPE=int8`), on PyTorch's own kernel.

A decode step reads every weight once to produce a token or a block; on a CPU that read is
the step's cost, so weights stored in one byte instead of two (bfloat16) or four (float32)
make it cheaper. Activations stay in the model's float dtype: each output channel keeps one
scale (symmetric, per row), and `torch.ops.aten._weight_int8pack_mm` multiplies float
activations by int8 weights without materialising a float copy of them.

Why not torchao (0.18, tried on torch 2.13 CPU): its `Int8WeightOnlyConfig` weight, in eager
mode, converts the whole int8 matrix to the activation dtype on every call
(`int8_tensor.py`: `w_vals_int8_t.to(output_dtype)`), which reads more bytes than the plain
float weight; its fast path needs `torch.compile`. The aten kernel is what torchao's own
earlier CPU layouts and gpt-fast's int8 mode call.

The embedding table is not quantized (a step reads one row per token of it); a tied LM head is
untied, so the vocabulary projection, a fifth of SmolLM2-135M's weights, is int8 as well.
"""

from __future__ import annotations

import torch
from torch import nn

from backends.llm.transformer import Transformer

WEIGHT_FORMATS = ("int8",)


class Int8Linear(nn.Module):
    """`nn.Linear` with int8 weights [out, in] and a float scale per output channel."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach()
        scales = weight.float().abs().amax(dim=1).clamp(min=1e-8) / 127
        quantized = (weight.float() / scales[:, None]).round().clamp(-128, 127).to(torch.int8)
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        self.register_buffer("weight", quantized.contiguous())
        self.register_buffer("scales", scales.to(weight.dtype))
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        if flat.dtype != self.scales.dtype:
            flat = flat.to(self.scales.dtype)
        out = torch.ops.aten._weight_int8pack_mm(flat.contiguous(), self.weight, self.scales)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def dequantized(self) -> torch.Tensor:
        return self.weight.float() * self.scales.float()[:, None]


def quantize_linears(model: Transformer, weights: str) -> Transformer:
    """Replace every linear layer (projections and LM head) with its `weights` version."""
    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"unknown weight format {weights!r}; known: {', '.join(WEIGHT_FORMATS)}")
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, nn.Linear)
    ]
    with torch.no_grad():
        for parent, name, child in targets:
            setattr(parent, name, Int8Linear(child))
    return model
