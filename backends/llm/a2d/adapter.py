"""The adapter file: LoRA weights and the mask token's embedding row, in one safetensors file.

Its metadata (`meta.py`) names the base it was trained on; loading refuses any other base, by
name. At load time the adapter is merged into the base weights once (peft's merge), so
decoding runs the plain `Transformer` at the base model's speed, with the load-time decoding
optimisations (fused projections, int8 weights) applied to the merged weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
from peft import get_peft_model_state_dict as peft_state_dict
from peft.tuners.lora import LoraLayer
from safetensors import safe_open
from safetensors.torch import save_file

from backends.llm.a2d.meta import (
    TARGET_MODULES,
    AdapterMeta,
    check_base,
    converted_facts,
    read_meta,
)
from backends.llm.facts import ModelFacts
from backends.llm.loader import LoadedModel, load_checkpoint, prepare_for_decoding
from backends.llm.transformer import Transformer
from ttdr.errors import ModelUnavailableError

# The mask token: a special token SmolLM2's tokenizer has but chat never uses. A tokenizer
# without it (the tiny test ones) uses its last id, which a tiny BPE vocabulary barely uses.
MASK_TOKEN = "<empty_output>"


def mask_token_id(tokenizer, vocab_size: int) -> int:
    token_id = tokenizer.get_vocab().get(MASK_TOKEN)
    return token_id if token_id is not None else vocab_size - 1


def lora_config(rank: int, alpha: int, mask_id: int) -> LoraConfig:
    """LoRA on every projection, plus the mask token's embedding row (peft's trainable tokens):
    the mask token must come to mean "unknown here", which no LoRA on the projections can say."""
    return LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=0.0,
        target_modules=list(TARGET_MODULES),
        trainable_token_indices={"embed": [mask_id]},
    )


def attach_lora(model: Transformer, rank: int, alpha: int, mask_id: int) -> PeftModel:
    """`model` wrapped for training; its own parameters stay frozen."""
    model.requires_grad_(False)
    return get_peft_model(model, lora_config(rank, alpha, mask_id))


def store_frozen_projections(
    peft_model: PeftModel, dtype: torch.dtype
) -> dict[torch.nn.Parameter, torch.Tensor]:
    """Keep the frozen base weights under the LoRA layers in `dtype` (for bfloat16 autocast).

    Autocast casts a frozen float32 weight to bfloat16 on every call (it caches only casts of
    weights that require grad), and those copies were a fifth of a training step's CPU time
    (profiled on one thread). Casting them once gives the matmuls the very same bfloat16
    operands, so the loss and gradients are unchanged (tested); the trainable LoRA matrices
    and the mask row stay float32. Returns each cast weight's former data (to restore)."""
    former: dict[torch.nn.Parameter, torch.Tensor] = {}
    for module in inner_model(peft_model).modules():
        if isinstance(module, LoraLayer):
            weight = module.get_base_layer().weight
            if not weight.requires_grad and weight.dtype != dtype:
                former[weight] = weight.data
                weight.data = weight.data.to(dtype)
    return former


def inner_model(peft_model: PeftModel) -> Transformer:
    """The `Transformer` inside, with the LoRA layers injected in place."""
    return peft_model.base_model.model


def adapter_tensors(peft_model: PeftModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().contiguous() for k, v in peft_state_dict(peft_model).items()}


def save_adapter(path: Path, peft_model: PeftModel, meta: AdapterMeta) -> None:
    write_adapter_file(path, adapter_tensors(peft_model), meta)


def write_adapter_file(path: Path, tensors: dict[str, torch.Tensor], meta: AdapterMeta) -> None:
    """Write atomically (a kill mid-write never leaves a torn adapter behind)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, tmp, metadata=meta.to_strings())
    os.replace(tmp, path)


def read_adapter_tensors(path: Path) -> dict[str, torch.Tensor]:
    with safe_open(path, framework="pt") as handle:
        return {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118


def merge_adapter(model: Transformer, path: Path) -> Transformer:
    """The base model with the adapter merged into its weights (float32 merge)."""
    meta = read_meta(path)
    dtype = next(model.parameters()).dtype
    wrapped = attach_lora(model.float(), meta.rank, meta.alpha, meta.mask_id)
    result = set_peft_model_state_dict(wrapped, read_adapter_tensors(path))
    if result.unexpected_keys:
        raise ModelUnavailableError(
            f"adapter {path} has tensors this model does not: {result.unexpected_keys[:3]}"
        )
    merged = wrapped.merge_and_unload()
    return merged.to(dtype).eval().requires_grad_(False)


@dataclass(frozen=True, eq=False)
class ConvertedModel:
    loaded: LoadedModel  # the base checkpoint, its model replaced by the merged one
    meta: AdapterMeta

    @property
    def facts(self) -> ModelFacts:
        return self.loaded.facts


def load_converted(
    folder: Path,
    path: Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    fuse: bool = False,
    weights: str | None = None,
) -> ConvertedModel:
    """The base checkpoint with the adapter merged in, after checking it is the right base;
    `fuse` and `weights` as in `load_checkpoint`, applied after the merge (LoRA targets the
    separate float projections)."""
    meta = read_meta(path)
    check_base(meta, folder, path)
    loaded = load_checkpoint(folder, device=device, dtype=torch.float32)
    model = merge_adapter(loaded.model, path)
    if dtype is not None:
        model = model.to(dtype)
    prepare_for_decoding(model, fuse=fuse, weights=weights)
    converted = replace(loaded, model=model, facts=converted_facts(loaded.facts, meta))
    return ConvertedModel(converted, meta)


def ship_adapter(source: Path, dest: Path) -> AdapterMeta:
    """A copy of a training run's adapter to commit: the same tensors in bfloat16 (half the
    bytes in the repository; the merge is done in float32 either way) and the same metadata."""
    meta = read_meta(source)
    tensors = read_adapter_tensors(source)
    shipped = {name: tensor.to(torch.bfloat16).contiguous() for name, tensor in tensors.items()}
    write_adapter_file(dest, shipped, meta)
    Path(dest).chmod(0o644)  # a file in the repository and in the wheel, read by every user
    return meta
