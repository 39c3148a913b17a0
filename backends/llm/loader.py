"""Load a local checkpoint folder of a known family into our `Transformer`.

The loader is generic (nano-vllm's is 28 lines): the family names each of our parameters in the
checkpoint, and the loader checks that every tensor is there with the right shape before it
allocates anything, then copies them in. No `trust_remote_code`: only config.json, safetensors
and the tokenizer files are read.

A tensor the family does not use is an error, not a warning: in practice it means a feature
the engine does not implement (an output-projection bias, OLMo-style q/k LayerNorm, MoE
experts), and running without it would give plausible-looking wrong output. Only buffers that
carry no weights (saved RoPE `inv_freq`) and a duplicate of a tied LM head are skipped.
"""

from __future__ import annotations

import json
import warnings
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open

from backends.llm.facts import ModelFacts
from backends.llm.families import Family, detect_family, family_named
from backends.llm.transformer import ModelArgs, Transformer, rope_frequencies
from ttdr.errors import ModelUnavailableError

IGNORED_SUFFIXES = (".rotary_emb.inv_freq",)  # saved by some older transformers versions
_STORED_DTYPES = {"F32": torch.float32, "BF16": torch.bfloat16, "F16": torch.float16}


@dataclass(frozen=True, eq=False)
class LoadedModel:
    model: Transformer
    tokenizer: Any
    family: Family
    args: ModelArgs
    folder: Path
    facts: ModelFacts  # the family's decode defaults, resolved against this checkpoint


def load_checkpoint(
    folder: str | Path,
    *,
    family: str | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype | None = None,
    fuse: bool = False,
    weights: str | None = None,
) -> LoadedModel:
    """Load `folder` (config.json, safetensors, tokenizer files) as `family` or the detected one.

    `dtype` None keeps the stored dtype on an accelerator and uses float32 on a CPU, where
    bfloat16 matmuls are slow. For decoding, `fuse` fuses the q/k/v and gate/up projections
    and `weights="int8"` stores the linear layers' weights in int8 (`quantize.py`); both are
    off by default because training (LoRA on the separate projections) loads through here too.
    """
    folder = Path(folder)
    config = read_config(folder)
    chosen = family_named(family) if family else detect_family(config)
    args = model_args(chosen, config, folder)
    tokenizer = load_tokenizer(folder, args)
    facts = resolve_facts(chosen, config, tokenizer, args)
    model = load_weights(folder, chosen, args, torch.device(device), dtype)
    prepare_for_decoding(model, fuse=fuse, weights=weights)
    return LoadedModel(
        model=model, tokenizer=tokenizer, family=chosen, args=args, folder=folder, facts=facts
    )


def prepare_for_decoding(model: Transformer, *, fuse: bool, weights: str | None) -> None:
    """The load-time decoding layout: fused q/k/v and gate/up projections (`fuse`), the linear
    layers' weights in int8 or int4 (`weights`; int4 leaves the LM head float, see
    `quantize.py`), then, with `fuse` on a CPU that multiplies bfloat16 natively, the float
    linear layers left in oneDNN's packed layout (`packed.py`; `fuse=False` is the plain path
    every fast path is checked against)."""
    if fuse:
        model.fuse_projections()
    if weights is not None:
        from backends.llm.quantize import quantize_linears

        quantize_linears(model, weights)
    if fuse:
        from backends.llm.packed import pack_linears, packing_supported

        if packing_supported(model.embed.weight.device, model.embed.weight.dtype):
            pack_linears(model)


def decodes_packed(model: Transformer) -> bool:
    """Whether `prepare_for_decoding` packed this model's linear layers."""
    from backends.llm.packed import PackedLinear

    return any(isinstance(module, PackedLinear) for module in model.modules())


def checkpoint_facts(folder: str | Path, family: Family | None = None) -> ModelFacts:
    """What `load_checkpoint(folder).facts` would be, from config.json and the tokenizer only:
    no weights are read."""
    folder = Path(folder)
    config = read_config(folder)
    family = family or detect_family(config)
    args = model_args(family, config, folder)
    return resolve_facts(family, config, load_tokenizer(folder, args), args)


def resolve_facts(
    family: Family, config: dict[str, Any], tokenizer: Any, args: ModelArgs
) -> ModelFacts:
    """The family's decode facts with what this checkpoint says instead: config.json's mask id
    and block size, and the end ids as its tokenizer numbers them."""
    facts = replace(
        family.facts,
        mask_token=mask_token_id(family, config, args),
        eos_ids=eos_token_ids(family, config, tokenizer, args),
    )
    if family.block_size_field and config.get(family.block_size_field):
        facts = replace(facts, block_size=int(config[family.block_size_field]))
    _ = facts.mask_id  # a checkpoint with neither a mask token nor an end token fails here
    return facts


def read_config(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelUnavailableError(f"{folder} has no config.json: not a checkpoint folder.")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ModelUnavailableError(f"{path} is not valid JSON: {exc}") from exc


def model_args(family: Family, config: dict[str, Any], folder: Path) -> ModelArgs:
    try:
        args = family.model_args(config)
        rope_frequencies(args)  # an unsupported rope_scaling type fails here, by name
    except (ModelUnavailableError, ValueError, TypeError) as exc:
        raise ModelUnavailableError(f"{folder / 'config.json'} ({family.name}): {exc}") from exc
    return args


def mask_token_id(family: Family, config: dict[str, Any], args: ModelArgs) -> int | None:
    """The config's `mask_token_id` if it has one, else the family's; it must be a token."""
    mask_id = config.get("mask_token_id")
    mask_id = family.facts.mask_token if mask_id is None else mask_id
    if mask_id is not None and not 0 <= mask_id < args.vocab_size:
        raise ModelUnavailableError(
            f"mask_token_id {mask_id} is outside the vocabulary (vocab_size {args.vocab_size}); "
            "set mask_token_id in config.json to the id of the tokenizer's mask token."
        )
    return mask_id


def eos_token_ids(
    family: Family, config: dict[str, Any], tokenizer: Any, args: ModelArgs
) -> tuple[int, ...]:
    """The family's EOS tokens as this tokenizer numbers them, plus config.json's eos_token_id."""
    vocabulary = tokenizer.get_vocab()
    ids = [vocabulary[token] for token in family.eos_tokens if token in vocabulary]
    configured = config.get("eos_token_id")
    ids += (
        configured if isinstance(configured, list) else [] if configured is None else [configured]
    )
    ids = ids or list(family.facts.eos_ids)
    return tuple(dict.fromkeys(i for i in ids if 0 <= i < args.vocab_size))


def load_tokenizer(folder: Path, args: ModelArgs) -> Any:
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    # AutoTokenizer also reads config.json, whose model_type (llada, Dream, sdar…) transformers
    # does not know: it warns about that and, without trust_remote_code=False, would ask on
    # stdin whether to run the checkpoint's code.
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
    except Exception as exc:  # transformers raises many kinds; the message says which file
        raise ModelUnavailableError(f"could not load the tokenizer in {folder}: {exc}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    if not tokenizer.chat_template:
        raise ModelUnavailableError(
            f"the tokenizer in {folder} has no chat template (chat_template.jinja or "
            "tokenizer_config.json 'chat_template'); the engine formats prompts with it."
        )
    if len(tokenizer) > args.vocab_size:
        raise ModelUnavailableError(
            f"the tokenizer in {folder} has {len(tokenizer)} tokens but config.json's "
            f"vocabulary size is {args.vocab_size}."
        )
    return tokenizer


def tensor_files(folder: Path) -> dict[str, Path]:
    """Checkpoint tensor name -> the safetensors file holding it (one file or shards)."""
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        weight_map = json.loads(index.read_text())["weight_map"]
        return {name: folder / file for name, file in weight_map.items()}
    single = folder / "model.safetensors"
    if single.is_file():
        with safe_open(single, framework="pt") as tensors:
            return dict.fromkeys(tensors.keys(), single)
    raise ModelUnavailableError(
        f"{folder} has no safetensors weights (model.safetensors or model.safetensors.index.json)."
    )


def load_weights(
    folder: Path, family: Family, args: ModelArgs, device: torch.device, dtype: torch.dtype | None
) -> Transformer:
    files = tensor_files(folder)
    with torch.device("meta"):
        model = Transformer(args)
    params = dict(model.named_parameters())  # a tied LM head appears once, as embed.weight
    names = {family.checkpoint_name(ours): ours for ours in params}
    _check_names(folder, family, args, names, files)
    by_file: dict[Path, list[str]] = defaultdict(list)
    for name in names:
        by_file[files[name]].append(name)
    stored = _check_shapes(by_file, names, params)

    if dtype is None:
        dtype = torch.float32 if device.type == "cpu" else stored
    model = model.to(dtype).to_empty(device=device)
    if args.tie_embeddings:
        model.lm_head.weight = model.embed.weight
    model.inv_freq = rope_frequencies(args).to(device)  # a buffer, not in the checkpoint
    params = dict(model.named_parameters())
    with torch.no_grad():
        for file, file_names in by_file.items():
            with safe_open(file, framework="pt") as tensors:
                for name in file_names:
                    params[names[name]].copy_(tensors.get_tensor(name))
    return model.eval().requires_grad_(False)


def _check_names(
    folder: Path, family: Family, args: ModelArgs, names: dict[str, str], files: dict[str, Path]
) -> None:
    missing = [name for name in names if name not in files]
    if missing:
        raise ModelUnavailableError(
            f"{folder} is not a complete {family.name} checkpoint: missing {_listed(missing)}."
        )
    tied_head = family.checkpoint_name("lm_head.weight") if args.tie_embeddings else None
    unexpected = [
        name
        for name in files
        if name not in names and name != tied_head and not name.endswith(IGNORED_SUFFIXES)
    ]
    if unexpected:
        raise ModelUnavailableError(
            f"{folder} has {_listed(unexpected)} that the {family.name} family does not use: "
            "the checkpoint has a feature this engine does not implement, or config.json does "
            "not describe it."
        )


def _check_shapes(
    by_file: dict[Path, list[str]], names: dict[str, str], params: dict[str, torch.nn.Parameter]
) -> torch.dtype:
    """Every tensor's shape, before anything is allocated; returns the embedding's dtype."""
    stored = torch.float32
    for file, file_names in by_file.items():
        if not file.is_file():
            raise ModelUnavailableError(f"safetensors shard {file} is missing.")
        with safe_open(file, framework="pt") as tensors:
            present = set(tensors.keys())
            for name in file_names:
                if name not in present:
                    raise ModelUnavailableError(f"tensor {name!r} is missing from {file}.")
                tensor = tensors.get_slice(name)
                found, expected = tuple(tensor.get_shape()), tuple(params[names[name]].shape)
                if found != expected:
                    raise ModelUnavailableError(
                        f"tensor {name!r} has shape {list(found)} in {file.name}, but "
                        f"config.json implies {list(expected)}."
                    )
                if names[name] == "embed.weight":
                    stored = _STORED_DTYPES.get(tensor.get_dtype(), torch.float32)
    return stored


def _listed(names: list[str]) -> str:
    shown = ", ".join(repr(name) for name in names[:5])
    more = f" (and {len(names) - 5} more)" if len(names) > 5 else ""
    return f"tensor{'s' if len(names) > 1 else ''} {shown}{more}"
