"""The adapter file: LoRA weights and the mask token's embedding row, in one safetensors file.

The adapter is only meaningful on the exact base weights it was trained on, so its metadata
names the base (folder name and a SHA-256 of its tensor files) and the decode facts the engine
needs (mask id, block size, attention, logit shift); loading refuses any other base, by name.
At load time the adapter is merged into the base weights once (peft's merge), so decoding runs
the plain `Transformer` at the base model's speed.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model, set_peft_model_state_dict
from peft import get_peft_model_state_dict as peft_state_dict
from safetensors import safe_open
from safetensors.torch import save_file

from backends.llm.facts import ModelFacts
from backends.llm.loader import LoadedModel, load_checkpoint, tensor_files
from backends.llm.transformer import Transformer
from ttdr.errors import ModelUnavailableError

FORMAT = "ttdr-a2d-adapter/1"
TARGET_MODULES = ("q", "k", "v", "o", "gate", "up", "down")
# The mask token: a special token SmolLM2's tokenizer has but chat never uses. A tokenizer
# without it (the tiny test ones) uses its last id, which a tiny BPE vocabulary barely uses.
MASK_TOKEN = "<empty_output>"


@dataclass(frozen=True)
class AdapterMeta:
    base: str  # the base checkpoint's folder name, for messages
    base_sha256: str
    mask_id: int
    block_size: int
    rank: int
    alpha: int
    target_modules: tuple[str, ...] = TARGET_MODULES
    attention: str = "block_causal"
    logit_shift: bool = True
    format: str = FORMAT
    training: dict[str, Any] = field(default_factory=dict)  # steps, tokens, recipe…

    def to_strings(self) -> dict[str, str]:
        return {k: json.dumps(v) for k, v in asdict(self).items()}

    @classmethod
    def from_strings(cls, data: dict[str, str], path: Path) -> AdapterMeta:
        if json.loads(data.get("format", "null")) != FORMAT:
            raise ModelUnavailableError(f"{path} is not a ttdr A2D adapter (format {FORMAT}).")
        values = {k: json.loads(v) for k, v in data.items() if k in cls.__dataclass_fields__}
        values["target_modules"] = tuple(values.get("target_modules", TARGET_MODULES))
        return cls(**values)


def mask_token_id(tokenizer, vocab_size: int) -> int:
    token_id = tokenizer.get_vocab().get(MASK_TOKEN)
    return token_id if token_id is not None else vocab_size - 1


def base_fingerprint(folder: Path) -> str:
    """SHA-256 over the checkpoint's tensor files (independent of the dtype it is loaded in)."""
    digest = hashlib.sha256()
    for file in sorted(set(tensor_files(Path(folder)).values())):
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


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


def inner_model(peft_model: PeftModel) -> Transformer:
    """The `Transformer` inside, with the LoRA layers injected in place."""
    return peft_model.base_model.model


def adapter_tensors(peft_model: PeftModel) -> dict[str, torch.Tensor]:
    return {k: v.detach().float().contiguous() for k, v in peft_state_dict(peft_model).items()}


def save_adapter(path: Path, peft_model: PeftModel, meta: AdapterMeta) -> None:
    """Write atomically (a kill mid-write never leaves a torn adapter behind)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(adapter_tensors(peft_model), tmp, metadata=meta.to_strings())
    os.replace(tmp, path)


def read_meta(path: Path) -> AdapterMeta:
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(f"adapter file {path} does not exist.")
    with safe_open(path, framework="pt") as handle:
        return AdapterMeta.from_strings(handle.metadata() or {}, path)


def check_base(meta: AdapterMeta, folder: Path, path: Path) -> None:
    found = base_fingerprint(folder)
    if found != meta.base_sha256:
        raise ModelUnavailableError(
            f"adapter {path} was trained on base {meta.base!r} (sha256 {meta.base_sha256[:12]}), "
            f"not on {Path(folder).name!r} (sha256 {found[:12]}): use the base it was trained on."
        )


def merge_adapter(model: Transformer, path: Path) -> Transformer:
    """The base model with the adapter merged into its weights (float32 merge)."""
    meta = read_meta(path)
    dtype = next(model.parameters()).dtype
    wrapped = attach_lora(model.float(), meta.rank, meta.alpha, meta.mask_id)
    with safe_open(path, framework="pt") as handle:
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    result = set_peft_model_state_dict(wrapped, tensors)
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
        return ModelFacts(
            mask_token=self.meta.mask_id,
            eos_ids=self.loaded.facts.eos_ids,
            logit_shift=self.meta.logit_shift,
            attention=self.meta.attention,  # type: ignore[arg-type]
            block_size=self.meta.block_size,
        )


def load_converted(
    folder: Path,
    path: Path,
    *,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
) -> ConvertedModel:
    """The base checkpoint with the adapter merged in, after checking it is the right base."""
    meta = read_meta(path)
    check_base(meta, folder, path)
    loaded = load_checkpoint(folder, device=device, dtype=torch.float32)
    model = merge_adapter(loaded.model, path)
    if dtype is not None:
        model = model.to(dtype)
    facts = replace(loaded.facts, mask_token=meta.mask_id, block_size=meta.block_size)
    converted = replace(loaded, model=model, facts=facts)
    return ConvertedModel(converted, meta)
