"""Two KV caches behind one call, `place`: the growing reference and the preallocated one.

Both hold keys and values per layer shaped [batch, kv_heads, length, head_dim] and answer the
same question: given a layer's fresh keys/values, what does attention read, and what stays
cached afterwards? `place` puts the fresh ones at `slot` (None: after the cache), and `commit`
keeps all of them (True), none (False) or the first n (the finished slots fed along with a
block's first step; the block's draft must not be kept).

- `KVCache` grows by concatenation: simple, and the only one that can put fresh keys inside
  the cache without disturbing what it holds there (the dual cache's block), but it copies
  the whole cache once per layer per step, so a reply costs O(length²) copying.
- `StaticKVCache` is allocated once at the canvas's length (gpt-fast's static cache): a step
  writes its keys into place and attention reads a view, so a step copies only its own keys.
  It serves the exact cache, which only ever appends.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class KVCache:
    """The growing cache (the reference the static one is tested against)."""

    keys: list[torch.Tensor] = field(default_factory=list)
    values: list[torch.Tensor] = field(default_factory=list)

    @property
    def length(self) -> int:
        return self.keys[0].shape[2] if self.keys else 0

    def truncate(self, length: int) -> None:
        self.keys = [k[:, :, :length] for k in self.keys]
        self.values = [v[:, :, :length] for v in self.values]

    def place(
        self, layer: int, k: torch.Tensor, v: torch.Tensor, slot: int | None, commit: bool | int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keys/values to attend over: the cache with the fresh ones at `slot`."""
        if layer >= len(self.keys):  # an empty cache: this call starts it
            self.keys.append(k[:, :, :0])
            self.values.append(v[:, :, :0])
        old_k, old_v = self.keys[layer], self.values[layer]
        start = old_k.shape[2] if slot is None else slot
        end = start + k.shape[2]
        full_k = torch.cat((old_k[:, :, :start], k, old_k[:, :, end:]), dim=2)
        full_v = torch.cat((old_v[:, :, :start], v, old_v[:, :, end:]), dim=2)
        if commit is True:
            self.keys[layer], self.values[layer] = full_k, full_v
        elif commit:  # keep only the first `commit` fresh slots: finished tokens, not the draft
            self.keys[layer] = full_k[:, :, : start + commit]
            self.values[layer] = full_v[:, :, : start + commit]
        return full_k, full_v


class StaticKVCache:
    """Keys/values preallocated for `capacity` slots; appends only.

    Slots past `length` are scratch: an uncommitted step's keys are written there, read by
    that step's attention through the view, and overwritten by the next step.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.lengths: list[int] = []  # per layer: layer i commits before layer i+1 is placed

    @property
    def length(self) -> int:
        return self.lengths[0] if self.lengths else 0

    def truncate(self, length: int) -> None:
        self.lengths = [min(n, length) for n in self.lengths]

    def place(
        self, layer: int, k: torch.Tensor, v: torch.Tensor, slot: int | None, commit: bool | int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if slot is not None:
            raise ValueError("a static cache only appends; the dual cache's slots need KVCache")
        if layer >= len(self.keys):  # the first call allocates, with the fresh keys' shape
            batch, heads, _, dim = k.shape
            shape = (batch, heads, self.capacity, dim)
            self.keys.append(torch.empty(shape, dtype=k.dtype, device=k.device))
            self.values.append(torch.empty(shape, dtype=v.dtype, device=v.device))
            self.lengths.append(0)
        start = self.lengths[layer]
        end = start + k.shape[2]
        if end > self.capacity:
            raise ValueError(f"a static cache of {self.capacity} slots cannot hold {end}")
        self.keys[layer][:, :, start:end] = k
        self.values[layer][:, :, start:end] = v
        if commit is True:
            self.lengths[layer] = end
        elif commit:
            self.lengths[layer] = start + commit
        return self.keys[layer][:, :, :end], self.values[layer][:, :, :end]

    def fill_with(self, keys: torch.Tensor, values: torch.Tensor, layers: int) -> None:
        """Commit the same `keys`/`values` [batch, heads, n, dim] to every layer: a cost
        measurement needs a cache of a given length, not of a given text."""
        for layer in range(layers):
            self.place(layer, keys, values, None, True)
