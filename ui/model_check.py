"""Whether a model name can run now, will be downloaded first, or cannot run, and why.

Reads the model cache and a folder's config.json only: nothing is loaded or downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from ttdr.errors import TtdrError

ModelState = Literal["ready", "will_download", "missing", "invalid"]


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


def check_model(name: str, cache: Path) -> ModelCheck:
    from backends.llm.registry import PRESETS, family_of, is_present, needs_download

    preset = PRESETS.get(name)
    if preset is not None:
        folder = preset.folder(cache)
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
