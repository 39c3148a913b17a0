"""One compact transformer for the LLaMA, Qwen2 and Qwen3 shapes that the dLLM families use.

What differs between them is data (`ModelArgs`): attention biases (Qwen2), per-head q/k
RMSNorm (Qwen3), grouped-query attention, tied embeddings and RoPE scaling. Which positions
may attend to which is not a property of the model at all but of the call: the engine passes
a boolean mask built by `attention.py`, so one set of weights serves causal, block-causal and
bidirectional decoding.

The KV cache is explicit: a call may read a cache, place its fresh keys/values at a slot inside
it (the current block of a dual cache) or after it (appending), and commit all of them or only
the first n (the finished block fed together with the next block's first step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn


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


@dataclass
class KVCache:
    """Keys and values per layer, shape [batch, kv_heads, length, head_dim]."""

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)

    @property
    def length(self) -> int:
        return self.keys[0].shape[2] if self.keys else 0

    def truncate(self, length: int) -> None:
        self.keys = [k[:, :, :length] for k in self.keys]
        self.values = [v[:, :, :length] for v in self.values]


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


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate-half RoPE as in the Hugging Face LLaMA/Qwen checkpoints."""
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    rotated = torch.cat((-x2, x1), dim=-1)
    return x * cos + rotated * sin


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

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        cache: KVCache | None,
        layer: int,
        slot: int | None,
        commit: bool | int,
    ) -> torch.Tensor:
        batch, length, _ = x.shape
        a = self.args
        q = self.q(x).view(batch, length, a.num_heads, a.head_dim)
        k = self.k(x).view(batch, length, a.num_kv_heads, a.head_dim)
        v = self.v(x).view(batch, length, a.num_kv_heads, a.head_dim)
        if a.qk_norm:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = _place_in_cache(cache, layer, k, v, slot, commit)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, enable_gqa=a.num_heads != a.num_kv_heads
        )
        return self.o(out.transpose(1, 2).reshape(batch, length, -1))


def _place_in_cache(
    cache: KVCache,
    layer: int,
    k: torch.Tensor,
    v: torch.Tensor,
    slot: int | None,
    commit: bool | int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Keys/values to attend over: the cache with the fresh ones at `slot` (None: appended)."""
    if layer >= len(cache.keys):  # an empty cache: this call starts it
        cache.keys.append(k[:, :, :0])
        cache.values.append(v[:, :, :0])
    old_k, old_v = cache.keys[layer], cache.values[layer]
    start = old_k.shape[2] if slot is None else slot
    end = start + k.shape[2]
    full_k = torch.cat((old_k[:, :, :start], k, old_k[:, :, end:]), dim=2)
    full_v = torch.cat((old_v[:, :, :start], v, old_v[:, :, end:]), dim=2)
    if commit is True:
        cache.keys[layer], cache.values[layer] = full_k, full_v
    elif commit:  # keep only the first `commit` fresh slots: finished tokens, not the draft
        cache.keys[layer] = full_k[:, :, : start + commit]
        cache.values[layer] = full_v[:, :, : start + commit]
    return full_k, full_v


class MLP(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.gate = nn.Linear(args.hidden_size, args.intermediate_size, bias=False)
        self.up = nn.Linear(args.hidden_size, args.intermediate_size, bias=False)
        self.down = nn.Linear(args.intermediate_size, args.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


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

    def forward(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        mask: torch.Tensor | None = None,
        *,
        cache: KVCache | None = None,
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
        freqs = positions[..., None].float() * self.inv_freq
        emb = torch.cat((freqs, freqs), dim=-1)[:, None]  # [batch, 1, length, head_dim]
        cos, sin = emb.cos(), emb.sin()
        x = self.embed(input_ids)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        for index, layer in enumerate(self.layers):
            x = layer(x, cos, sin, mask, cache, index, slot, commit)
        if logits_for is not None:
            x = x[:, logits_for]
        return self.lm_head(self.norm(x)).float()
