"""ttdr: a deep-research agent that writes cited reports by test-time diffusion.

Imports flow one way (tests/test_import_layers.py checks every import, those inside functions
too):

    ui, ttdr.cli  →  ttdr.api  →  agents  →  backends  →  ttdr core

- front ends (`ui`, `ttdr.cli`) import `ttdr.api` and the core, nothing else: not the agent,
  the engine, the store, nor each other (`ttdr ui` runs `python -m ui.launch`);
- `ttdr.api` is the front door; the modules behind it (models catalogue, prompt population,
  eval, benchmarks, training) are re-exported from it and may import anything below;
- `agents` record through the core's protocols (ttdr/recording.py), never `ttdr.store`;
- `backends` import only the core; the core (models, events, config, errors, recording,
  terminal, progress, export, liveness, store) imports nothing above it.

    from ttdr import Researcher
    report = Researcher().run("How do diffusion language models decode in parallel?")
    print(report.markdown)

The heavy parts (torch, the graph) load on first use, so `import ttdr` stays fast.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from ttdr.config import Settings
from ttdr.models import (
    Citation,
    DraftVersion,
    Plan,
    PlanSection,
    QAPair,
    Report,
    ResearchConfig,
    RunEvent,
    RunStatus,
    Source,
)

if TYPE_CHECKING:
    from ttdr.api import Researcher

try:
    __version__ = version("ttdr")
except PackageNotFoundError:  # running from a source checkout that was never installed
    __version__ = "0.0.0+source"

__all__ = [
    "Citation",
    "DraftVersion",
    "Plan",
    "PlanSection",
    "QAPair",
    "Report",
    "ResearchConfig",
    "Researcher",
    "RunEvent",
    "RunStatus",
    "Settings",
    "Source",
    "__version__",
]


def __getattr__(name: str):
    if name == "Researcher":
        from ttdr.api import Researcher

        return Researcher
    raise AttributeError(f"module 'ttdr' has no attribute {name!r}")
