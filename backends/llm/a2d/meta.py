"""What an adapter file says about itself, readable without loading peft or any weights.

The adapter is only meaningful on the exact base weights it was trained on, so its metadata
names the base (folder name and a SHA-256 of its tensor files) and the decode facts the engine
needs (mask id, block size, attention, logit shift). `ttdr models` reads it to say how a
converted preset decodes; loading (`adapter.py`) checks the base with it before merging.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from safetensors import SafetensorError, safe_open

from backends.llm.facts import ModelFacts
from backends.llm.loader import tensor_files
from ttdr.errors import ModelUnavailableError

FORMAT = "ttdr-a2d-adapter/1"
TARGET_MODULES = ("q", "k", "v", "o", "gate", "up", "down")


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
    threshold: float = 0.9  # the confidence threshold the converted model decodes at
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


def base_fingerprint(folder: Path) -> str:
    """SHA-256 over the checkpoint's tensor files (independent of the dtype it is loaded in)."""
    digest = hashlib.sha256()
    for file in sorted(set(tensor_files(Path(folder)).values())):
        with open(file, "rb") as handle:
            while chunk := handle.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def read_meta(path: Path) -> AdapterMeta:
    path = Path(path)
    if not path.is_file():
        raise ModelUnavailableError(f"adapter file {path} does not exist.")
    try:
        with safe_open(path, framework="pt") as handle:
            return AdapterMeta.from_strings(handle.metadata() or {}, path)
    except SafetensorError as exc:  # a torn copy, or not an adapter at all
        raise ModelUnavailableError(
            f"adapter file {path} is not a readable safetensors file ({exc}): copy it again, "
            "or write it anew with `ttdr train a2d fit` / `ttdr train a2d ship`."
        ) from None


def check_base(meta: AdapterMeta, folder: Path, path: Path) -> None:
    found = base_fingerprint(folder)
    if found == meta.base_sha256:
        return
    if Path(folder).name == meta.base:  # the same model, other bytes: e.g. converted anew
        raise ModelUnavailableError(
            f"adapter {path} was trained on other weights of {meta.base!r} than those at "
            f"{folder} (sha256 {meta.base_sha256[:12]}, found {found[:12]}; converted by another "
            "version of transformers?): use the autoregressive model, or train an adapter here."
        )
    raise ModelUnavailableError(
        f"adapter {path} was trained on base {meta.base!r} (sha256 {meta.base_sha256[:12]}), "
        f"not on {Path(folder).name!r} (sha256 {found[:12]}): use the base it was trained on."
    )


def converted_facts(base: ModelFacts, meta: AdapterMeta) -> ModelFacts:
    """The base's facts (end ids, threshold) with the adapter's attention, block and mask.

    A step that commits nothing above the threshold commits the leftmost masked slot: on the
    same prompts (`ttdr train a2d eval`, steps 890 and 1095) that wrote text the base finds
    likelier than committing the surest slot in three of four prompt sets and penalties (NLL
    1.55 vs 1.93 on ttdr's calls, 0.90 vs 1.45 on factual prompts at penalty 1.1) at the same
    tokens per forward: a partly converted model is surest, and wrong, at its far slots."""
    return replace(
        base,
        mask_token=meta.mask_id,
        logit_shift=meta.logit_shift,
        attention=meta.attention,  # type: ignore[arg-type]
        block_size=meta.block_size,
        threshold=meta.threshold,
        fallback="leftmost",
    )
