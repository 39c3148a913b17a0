"""What the agent needs from a history: protocols the store implements.

The workflow (agents/) writes a run as it happens and keeps an evolving prompt population,
but it must not depend on how either is stored: it types against these protocols, and
`ttdr.store` is one implementation (a test or another front end can bring its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ttdr.models import DraftVersion, Plan, QAPair, Report, RunEvent, Source


class RunRecorder(Protocol):
    """Where a running research writes what it produces; every call is durable on return,
    so a crash keeps everything up to the last event."""

    def save_plan(self, run_id: str, plan: Plan) -> None: ...

    def add_draft(self, run_id: str, draft: DraftVersion) -> None:
        """One version per iteration: writing an iteration again replaces it."""
        ...

    def add_qa(self, run_id: str, qa: QAPair) -> None:
        """Keyed by iteration and question: writing a pair again replaces it."""
        ...

    def add_source(self, run_id: str, *, url: str, title: str, kind: str, excerpt: str) -> Source:
        """Number a retrieved document within its run; the same URL keeps its first number."""
        ...

    def sources(self, run_id: str) -> list[Source]: ...

    def save_report(self, report: Report) -> None: ...

    def add_event(self, run_event: RunEvent) -> None: ...


class PromptVersion(Protocol):
    """One stored version of a component's prompt."""

    @property
    def id(self) -> int | None: ...

    @property
    def component(self) -> str: ...

    @property
    def text(self) -> str: ...

    @property
    def fitness(self) -> float | None: ...

    @property
    def uses(self) -> int: ...

    @property
    def note(self) -> str: ...


class PromptPopulation(Protocol):
    """The evolving prompts, across runs: versions with their fitness and use counts."""

    def versions(self, component: str | None = None) -> Sequence[PromptVersion]: ...

    def get(self, prompt_id: int) -> PromptVersion | None: ...

    def add(
        self, component: str, text: str, *, parent_id: int | None = None, note: str = ""
    ) -> PromptVersion: ...

    def seed(self, component: str, text: str) -> PromptVersion:
        """The component's first version, added only if it has none (atomically)."""
        ...

    def remove(self, prompt_id: int) -> None: ...
