"""The evolving prompt population as the front ends show it: versions with their fitness,
the seed of each component, and a reset. Part of the front door (`ttdr.api` re-exports it).
"""

from __future__ import annotations

from ttdr.config import Settings
from ttdr.store import PromptRow, PromptStore, Store


def prompt_components() -> dict[str, str]:
    """Each evolving component's seed prompt, by component name."""
    from agents.prompt_book import SEEDS

    return dict(SEEDS)


def prompt_versions(settings: Settings, component: str | None = None) -> list[PromptRow]:
    """The stored versions (of one component, or of all), by component and age."""
    return PromptStore(Store(settings.db_path)).versions(component)


def reset_prompts(settings: Settings, component: str | None = None) -> int:
    """Forget evolved prompts (of one component, or all); the next run starts from the seeds.
    Returns how many versions were removed."""
    return PromptStore(Store(settings.db_path)).reset(component)
