"""Weight-only int8 and int4 for the linear layers (`TTDR_DTYPE=int8|int4`), on PyTorch's own
CPU kernels.

A decode step reads every weight once to produce a token or a block; on a CPU that read is
the step's cost, so weights stored in one byte (int8) or half a byte (int4) instead of two
(bfloat16) or four (float32) make it cheaper. Activations stay in the model's float dtype.

int8: each output channel keeps one scale (symmetric, per row), and
`torch.ops.aten._weight_int8pack_mm` multiplies float activations by int8 weights without
materialising a float copy of them.

int4: blocks of 32 inputs per output channel, each with a scale and a minimum (w = q * scale +
min, q in 0..15). That is llama.cpp's Q4_1, the layout the default model's GGUF ships its
projections in, so quantizing the base's de-quantized weights this way gives its blocks back.
`torch.ops.aten._weight_int4pack_mm_for_cpu` multiplies a few activation rows by them about 3x
faster than oneDNN's packed bfloat16 on an AVX512 CPU (SmolLM2-135M's projections, one row:
3.7 against 10.8 ms on two cores), but its cost grows with the rows while a float product's
hardly does (8 rows: equal; 16 rows: 2x slower), and a prefill of hundreds of rows would crawl.
So each int4 layer also keeps its de-quantized weights in the float dtype (in oneDNN's packed
layout where that pays) for calls with more than `INT4_MAX_ROWS` rows: more memory, in exchange
for decode steps that read a quarter of the bytes and prefills as fast as before. Both paths
multiply by the same de-quantized values.

Why not torchao (0.18, tried on torch 2.13 CPU): its `Int8WeightOnlyConfig` weight, in eager
mode, converts the whole int8 matrix to the activation dtype on every call
(`int8_tensor.py`: `w_vals_int8_t.to(output_dtype)`), which reads more bytes than the plain
float weight; its fast path needs `torch.compile`. The aten kernels are what torchao's own
earlier CPU layouts and gpt-fast's int8/int4 modes call.

The embedding table is not quantized (a step reads one row per token of it). With int8 a tied
LM head is untied, so the vocabulary projection, a fifth of SmolLM2-135M's weights, is int8 as
well. With int4 the head stays float: the default model's GGUF stores it in 8 bits (Q8_0), 4-bit
blocks of it raised the NLL of the corpus texts by 1.5% where 4-bit projections moved it by
-0.02% (3.9821 against 3.9829 for packed bfloat16, SmolLM2-135M-Instruct), and an int8 head was
barely faster than a packed bfloat16 one for one row (1.91 against 2.14 ms).
"""

from __future__ import annotations

import torch
from torch import nn

from backends.llm.packed import PackedLinear, packing_supported
from backends.llm.transformer import Transformer

WEIGHT_FORMATS = ("int8", "int4")
INT4_GROUP = 32  # Q4_1's block: 32 inputs share a scale and a minimum
INT4_MAX_ROWS = 6  # measured: the int4 kernel is ahead up to ~6 rows, level with float at 8


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


def int4_fits(linear: nn.Linear) -> bool:
    """The int4 kernel takes inputs in whole groups and outputs in multiples of 16."""
    out_features, in_features = linear.weight.shape
    return in_features % INT4_GROUP == 0 and out_features % 16 == 0


class Int4Linear(nn.Module):
    """`nn.Linear` with Q4_1-style int4 weights for few rows and their float copy for many."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach()
        dtype = weight.dtype
        self.in_features, self.out_features = weight.shape[1], weight.shape[0]
        codes, scales, minimums = quantize_q4_1(weight.float())
        # The kernel de-quantizes as (q - 8) * scale + zero, so zero = minimum + 8 * scale;
        # both are kept in the activations' dtype, which is what it multiplies in.
        scales, zeros = scales.to(dtype), (minimums + 8 * scales).to(dtype)
        self.codes = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
        pairs = torch.stack([scales, zeros], -1).transpose(0, 1).contiguous()  # [groups, out, 2]
        self.register_buffer("scales_and_zeros", pairs)
        bias = linear.bias
        self.register_buffer("bias", None if bias is None else bias.detach().clone())
        self.weight_bytes = self.codes.numel() * self.codes.element_size()
        dense = nn.Linear(self.in_features, self.out_features, bias=False, device="meta")
        values = dequantize(codes, self.scales_and_zeros)
        dense.weight = nn.Parameter(values.to(dtype), requires_grad=False)
        # A plain attribute, not a submodule: a decode step never reads it, so the weight-read
        # bound must not count it, and it lives where the layer was built (no `.to()`).
        self.__dict__["many_rows"] = (
            PackedLinear(dense) if packing_supported(weight.device, dtype) else dense
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        if flat.shape[0] > INT4_MAX_ROWS:
            out = self.__dict__["many_rows"](flat)
        else:
            out = torch.ops.aten._weight_int4pack_mm_for_cpu(
                flat.contiguous(), self.codes, INT4_GROUP, self.scales_and_zeros
            )
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)

    def dequantized(self) -> torch.Tensor:
        """The weights both paths multiply by, in float32 [out, in], read back from the
        kernel's own packed codes."""
        codes = unpack_codes(self.codes, self.out_features, self.in_features)
        return dequantize(codes, self.scales_and_zeros)


def dequantize(codes: torch.Tensor, scales_and_zeros: torch.Tensor) -> torch.Tensor:
    """(q - 8) * scale + zero per group, as the kernel computes it, in float32 [out, in]."""
    out_features, in_features = codes.shape
    pairs = scales_and_zeros.float().transpose(0, 1)  # [out, groups, 2]
    groups = codes.float().reshape(out_features, -1, INT4_GROUP)
    values = (groups - 8) * pairs[..., 0:1] + pairs[..., 1:2]
    return values.reshape(out_features, in_features)


def quantize_q4_1(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Codes [out, in] (int32, 0..15), scales and minimums [out, groups] of a float32 weight:
    each group of 32 inputs spans its own min..max in 15 steps, as llama.cpp's Q4_1 does."""
    out_features, in_features = weight.shape
    groups = weight.reshape(out_features, in_features // INT4_GROUP, INT4_GROUP)
    minimums, maximums = groups.amin(-1), groups.amax(-1)
    scales = ((maximums - minimums) / 15).clamp(min=1e-12)
    codes = ((groups - minimums[..., None]) / scales[..., None]).round().clamp(0, 15)
    return codes.to(torch.int32).reshape(out_features, in_features), scales, minimums


def unpack_codes(packed: torch.Tensor, out_features: int, in_features: int) -> torch.Tensor:
    """The 0..15 codes [out, in] back from the kernel's packed layout, read through the kernel
    itself (an identity input de-quantizes one column per row), so the layout stays its own."""
    identity = torch.eye(in_features, dtype=torch.float32)
    ones = torch.ones(in_features // INT4_GROUP, out_features, 1)
    scales_and_zeros = torch.cat([ones, torch.full_like(ones, 8.0)], -1)  # (q - 8) * 1 + 8 = q
    mm = torch.ops.aten._weight_int4pack_mm_for_cpu
    codes = mm(identity, packed, INT4_GROUP, scales_and_zeros)
    return codes.T.round().to(torch.int32)


def quantize_linears(model: Transformer, weights: str) -> Transformer:
    """Replace the linear layers with their `weights` version: every one for int8; for int4
    the projections the kernel can take (`int4_fits`), not the LM head (see above)."""
    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"unknown weight format {weights!r}; known: {', '.join(WEIGHT_FORMATS)}")
    if weights == "int4" and model.embed.weight.device.type != "cpu":
        raise ValueError("int4 weights are a CPU format here; on a GPU use bfloat16 or int8")
    targets = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if isinstance(child, nn.Linear)
    ]
    with torch.no_grad():
        for parent, name, child in targets:
            if weights == "int8":
                setattr(parent, name, Int8Linear(child))
            elif child is not model.lm_head and int4_fits(child):
                setattr(parent, name, Int4Linear(child))
    return model
