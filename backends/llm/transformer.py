"""One compact transformer for the LLaMA, Qwen2 and Qwen3 shapes that the dLLM families use.

What differs between them is data (`ModelArgs`): attention biases (Qwen2), per-head q/k
RMSNorm (Qwen3), grouped-query attention, tied embeddings and RoPE scaling. Which positions
may attend to which is not a property of the model at all but of the call: the engine passes
a boolean mask built by `attention.py`, so one set of weights serves causal, block-causal and
bidirectional decoding.

The KV cache is explicit (`kv_cache.py`): a call may read a cache, place its fresh keys/values
at a slot inside it (the current block of a dual cache) or after it (appending), and commit all
of them or only the first n (the finished block fed together with the next block's first step).

The plain layers mirror the checkpoints (separate q, k, v, gate and up projections, which is
what LoRA adapters target); `fuse_projections` turns them into two wide matmuls per layer for
decoding, which the tests check gives the same tokens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from backends.llm.kv_cache import KVCache, StaticKVCache

Cache = KVCache | StaticKVCache


@dataclass(frozen=True)
class ModelArgs:
    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    head_dim: int = 0  # 0: hidden_size // num_heads
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    qk_norm: bool = False
    attention_bias: bool = False
    tie_embeddings: bool = False
    max_position_embeddings: int = 4096

    def __post_init__(self) -> None:
        if self.head_dim == 0:
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_heads)
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads ({self.num_heads}) must be a multiple of num_kv_heads "
                f"({self.num_kv_heads})"
            )


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def rope_frequencies(args: ModelArgs) -> torch.Tensor:
    """Inverse frequencies, with the 'llama3' and 'linear' scalings the checkpoints use."""
    dim = args.head_dim
    inv_freq = 1.0 / (args.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float64) / dim))
    scaling = args.rope_scaling or {}
    kind = scaling.get("rope_type") or scaling.get("type") or "default"
    if kind == "linear":
        inv_freq = inv_freq / float(scaling["factor"])
    elif kind == "llama3":
        # Llama 3.1's frequency-dependent interpolation (long wavelengths scaled by `factor`).
        factor = float(scaling["factor"])
        low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        original = float(scaling["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv_freq
        smooth = (original / wavelen - low) / (high - low)
        scaled = torch.where(wavelen > original / low, inv_freq / factor, inv_freq)
        middle = (wavelen <= original / low) & (wavelen >= original / high)
        blended = (1 - smooth) * inv_freq / factor + smooth * inv_freq
        inv_freq = torch.where(middle, blended, scaled)
    elif kind not in ("default", None):
        raise ValueError(f"unsupported rope_scaling type {kind!r}")
    return inv_freq.float()


def rope_tables(positions: torch.Tensor, inv_freq: torch.Tensor, dtype: torch.dtype):
    """cos and signed sin [batch, length, 1, head_dim] for `apply_rope`, once per forward.

    The sign of rotate-half (-x2 beside x1) lives in the sin table, so that rotating a
    head is one `roll` instead of two slices, a negation and a concatenation.
    """
    freqs = positions[..., None].float() * inv_freq
    sin = freqs.sin()
    cos = torch.cat((freqs, freqs), dim=-1).cos()
    signed_sin = torch.cat((-sin, sin), dim=-1)
    return cos[:, :, None].to(dtype), signed_sin[:, :, None].to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE as in the Hugging Face LLaMA/Qwen checkpoints, on [batch, length,
    heads, head_dim]: x * cos + (-x2, x1) * sin, bit for bit."""
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * signed_sin


class Attention(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        bias = args.attention_bias
        self.q = nn.Linear(args.hidden_size, args.num_heads * args.head_dim, bias=bias)
        self.k = nn.Linear(args.hidden_size, args.num_kv_heads * args.head_dim, bias=bias)
        self.v = nn.Linear(args.hidden_size, args.num_kv_heads * args.head_dim, bias=bias)
        self.o = nn.Linear(args.num_heads * args.head_dim, args.hidden_size, bias=False)
        if args.qk_norm:
            self.q_norm = RMSNorm(args.head_dim, args.rms_norm_eps)
            self.k_norm = RMSNorm(args.head_dim, args.rms_norm_eps)
        self.qkv: nn.Linear | None = None  # set by `fuse_projections`
        self.split = (args.num_heads * args.head_dim, *[args.num_kv_heads * args.head_dim] * 2)

    def fuse_projections(self) -> None:
        """q, k and v as one matmul: a decode step is bound by reading weights and by Python
        dispatch, and one wide matmul reads the same bytes with a third of the calls."""
        self.qkv = concatenated_linear(self.q, self.k, self.v)
        del self.q, self.k, self.v

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: Cache | None,
        layer: int,
        slot: int | None,
        commit: bool | int,
    ) -> torch.Tensor:
        batch, length, _ = x.shape
        a = self.args
        if self.qkv is not None and not a.qk_norm:
            # q and k sit side by side in the fused output: rotate them as one tensor.
            qkv = self.qkv(x)
            heads = a.num_heads + a.num_kv_heads
            qk = qkv[..., : heads * a.head_dim].view(batch, length, heads, a.head_dim)
            q, k = apply_rope(qk, cos, sin).split((a.num_heads, a.num_kv_heads), dim=2)
            v = qkv[..., heads * a.head_dim :].view(batch, length, a.num_kv_heads, a.head_dim)
        else:
            if self.qkv is not None:
                q, k, v = self.qkv(x).split(self.split, dim=-1)
            else:
                q, k, v = self.q(x), self.k(x), self.v(x)
            q = q.view(batch, length, a.num_heads, a.head_dim)
            k = k.view(batch, length, a.num_kv_heads, a.head_dim)
            v = v.view(batch, length, a.num_kv_heads, a.head_dim)
            if a.qk_norm:
                q, k = self.q_norm(q), self.k_norm(k)
            q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k, v = cache.place(layer, k, v, slot, commit)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, enable_gqa=a.num_heads != a.num_kv_heads
        )
        return self.o(out.transpose(1, 2).reshape(batch, length, -1))


class MLP(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.gate = nn.Linear(args.hidden_size, args.intermediate_size, bias=False)
        self.up = nn.Linear(args.hidden_size, args.intermediate_size, bias=False)
        self.down = nn.Linear(args.intermediate_size, args.hidden_size, bias=False)
        self.gate_up: nn.Linear | None = None  # set by `fuse_projections`

    def fuse_projections(self) -> None:
        self.gate_up = concatenated_linear(self.gate, self.up)
        del self.gate, self.up

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate_up is not None:
            gate, up = self.gate_up(x).chunk(2, dim=-1)
            return self.down(F.silu(gate) * up)
        return self.down(F.silu(self.gate(x)) * self.up(x))


def concatenated_linear(*linears: nn.Linear) -> nn.Linear:
    """One linear layer whose output is the given layers' outputs side by side."""
    weight = torch.cat([linear.weight for linear in linears])
    biases = [linear.bias for linear in linears]
    fused = nn.Linear(weight.shape[1], weight.shape[0], bias=biases[0] is not None, device="meta")
    fused.weight = nn.Parameter(weight, requires_grad=False)
    if biases[0] is not None:
        fused.bias = nn.Parameter(torch.cat(biases), requires_grad=False)
    return fused


class Block(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.attn = Attention(args)
        self.mlp_norm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.mlp = MLP(args)

    def forward(self, x, cos, sin, mask, cache, layer, slot, commit) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, mask, cache, layer, slot, commit)
        return x + self.mlp(self.mlp_norm(x))


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        self.embed = nn.Embedding(args.vocab_size, args.hidden_size)
        self.layers = nn.ModuleList(Block(args) for _ in range(args.num_layers))
        self.norm = RMSNorm(args.hidden_size, args.rms_norm_eps)
        self.lm_head = nn.Linear(args.hidden_size, args.vocab_size, bias=False)
        if args.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        self.register_buffer("inv_freq", rope_frequencies(args), persistent=False)
        # Set by `compiled.compile_decode_steps` (TTDR_COMPILE): the layer stack, compiled,
        # for the decode steps it accepts; every other call runs the loop below.
        self.compiled_layers = None

    def fuse_projections(self) -> Transformer:
        """Fuse every layer's q/k/v and gate/up projections (same outputs, fewer calls).
        Done once after loading, and after merging any adapter: LoRA targets the separate
        projections, and a fused model's parameter names no longer match the checkpoint's."""
        for layer in self.layers:
            layer.attn.fuse_projections()
            layer.mlp.fuse_projections()
        return self

    def run_layers(self, x, cos, sin, mask, cache, slot, commit) -> torch.Tensor:
        """The layer stack on embedded `x` (what `compiled.py` compiles for decode steps)."""
        for index, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, cache, index, slot, commit)
        return x

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        cache: Cache | None = None,
        slot: int | None = None,
        commit: bool | int = False,
        logits_for: slice | None = None,
    ) -> torch.Tensor:
        """Logits for `input_ids` [batch, length] at `positions` [batch, length].

        `mask` is boolean, True where a query may attend, shaped [batch|1, 1, length, keys]
        with keys = cache length (after placement) or `length` without a cache; None lets
        every query see every key. `logits_for` limits the vocabulary projection to the
        positions that need it (a decode step reads only its block and the slot before it).
        """
        x = self.embed(input_ids)
        cos, sin = rope_tables(positions, self.inv_freq, x.dtype)
        compiled = self.compiled_layers
        if compiled is not None and compiled.accepts(input_ids.shape[1], cache, slot):
            x = compiled(x, cos, sin, mask, cache, commit)
        else:
            x = self.run_layers(x, cos, sin, mask, cache, slot, commit)
        if logits_for is not None:
            x = x[:, logits_for]
        return self.lm_head(self.norm(x)).float()
