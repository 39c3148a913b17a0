"""The models ttdr can use, as the front ends show them: the presets with their decoding and
cache state, one model's facts, and whether a name can run now and why.

Reads the model cache, a folder's config.json and its tokenizer only: nothing is loaded or
downloaded. Part of the front door (`ttdr.api` re-exports it); the engine's registry is
imported on first use, so listing commands do not pay for torch at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ttdr.config import Settings
from ttdr.errors import TtdrError
from ttdr.models import DEFAULT_MODEL

ModelState = Literal["ready", "will_download", "missing", "invalid"]


@dataclass(frozen=True)
class ModelEntry:
    """A preset and where it stands in the cache."""

    name: str
    family: str
    decoding: str  # how the family decodes, in one line
    source: str
    description: str
    folder: Path
    present: bool
    fetched_on_first_use: bool  # the registry can fetch it (the default model); else placed
    default: bool


@dataclass(frozen=True)
class ModelCheck:
    name: str
    state: ModelState
    family: str | None
    folder: Path | None
    message: str

    @property
    def runnable(self) -> bool:
        return self.state in ("ready", "will_download")


def model_names() -> list[str]:
    """The presets' names, the default first."""
    from backends.llm.registry import PRESETS

    return sorted(PRESETS, key=lambda name: name != DEFAULT_MODEL)


def list_models(cache: Path) -> list[ModelEntry]:
    from backends.llm.registry import model_statuses, preset_decoding

    return [
        ModelEntry(
            name=status.preset.name,
            family=status.preset.family,
            decoding=preset_decoding(status.preset),
            source=status.preset.source,
            description=status.preset.description,
            folder=status.folder,
            present=status.present,
            fetched_on_first_use=status.preset.fetch is not None,
            default=status.preset.name == DEFAULT_MODEL,
        )
        for status in model_statuses(cache)
    ]


def model_decoding(name: str, family: str | None) -> str:
    """How the model `name` decodes by default, in one line: a converted preset decodes as its
    adapter says, anything else as its family does."""
    from backends.llm.registry import PRESETS, preset_decoding

    preset = PRESETS.get(name)
    return preset_decoding(preset) if preset is not None else family_decoding(family)


def family_decoding(family: str | None) -> str:
    """How a family decodes by default, in one line; "unknown" for no known family."""
    from backends.llm.families import FAMILIES

    return FAMILIES[family].facts.describe() if family in FAMILIES else "unknown"


def model_info(name: str, cache: Path) -> dict[str, str]:
    """A preset's, a family's or a checkpoint folder's decode facts, as labelled rows.
    An unknown name raises `ModelUnavailableError` naming what would do."""
    from backends.llm.registry import PRESETS, describe_folder, family_of, model_facts

    family = family_of(name)
    facts = model_facts(name, cache)
    sub_block = f" (sub-block {facts.sub_block_size})" if facts.sub_block_size else ""
    rows = {
        "family": family.name,
        "decoding": facts.describe(),
        "attention": facts.attention,
        "block size": f"{facts.block_size}{sub_block}",
        "threshold": str(facts.threshold),
        "logit shift": "yes" if facts.logit_shift else "no",
        "mask id": "none (autoregressive)" if facts.mask_token is None else str(facts.mask_token),
        "end ids": ", ".join(map(str, facts.eos_ids)) or "from the tokenizer",
    }
    preset = PRESETS.get(name)
    folder = preset.folder(cache) if preset is not None else Path(name)
    if preset is not None:
        rows |= {"source": preset.source, "about": preset.description, "folder": str(folder)}
    if (folder / "config.json").is_file():
        rows |= {key: str(value) for key, value in describe_folder(folder).items()}
    return rows


def runtime_device(settings: Settings) -> str:
    """Where the engine would run under these settings, and with which weights."""
    from backends.llm.registry import decode_precision, four_bit_source, pick_device

    device = pick_device(settings.device)
    four_bit = four_bit_source(settings.model)
    chosen, weights = decode_precision(settings.dtype, device, four_bit_source=four_bit)
    floats = str(chosen).removeprefix("torch.")
    kept_float = {"int4": "activations and LM head", "int8": "activations"}
    described = f"{weights} ({floats} {kept_float[weights]})" if weights else floats
    return f"{device} ({settings.device} requested) · weights {described}"


def check_model(name: str, cache: Path) -> ModelCheck:
    """Whether `name` can run now, will be downloaded first, or cannot run, and why."""
    from backends.llm.registry import PRESETS, family_of, is_present, needs_download

    preset = PRESETS.get(name)
    if preset is not None:
        folder = preset.folder(cache)
        if preset.adapter is not None and not preset.adapter.is_file():
            return ModelCheck(
                name,
                "missing",
                preset.family,
                folder,
                f"The adapter file {preset.adapter} is missing from this install: reinstall "
                "ttdr from its repository, which ships it.",
            )
        if needs_download(name, cache):
            return ModelCheck(
                name,
                "will_download",
                preset.family,
                folder,
                f"Not downloaded yet: the first run fetches it ({preset.source}) into "
                f"{cache} and converts it once, about half a minute; later runs load it in "
                "about a second.",
            )
        if is_present(folder):
            return ModelCheck(name, "ready", preset.family, folder, f"In the cache at {folder}.")
        return ModelCheck(
            name,
            "missing",
            preset.family,
            folder,
            f"Not in the model cache. No model hub is reachable from ttdr: place the "
            f"checkpoint folder ({preset.source.split(':')[0]}) at {folder}.",
        )
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return ModelCheck(
            name,
            "invalid",
            None,
            None,
            f"{name!r} is neither a preset ({', '.join(PRESETS)}) nor an existing checkpoint "
            "folder.",
        )
    try:
        family = family_of(str(folder)).name
    except TtdrError as exc:
        return ModelCheck(name, "invalid", None, folder, str(exc))
    return ModelCheck(name, "ready", family, folder, f"Checkpoint folder {folder}.")
