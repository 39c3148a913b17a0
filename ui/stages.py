"""A run's stored events grouped into one panel per workflow stage, with each panel's state.

Built from the store alone, so a finished run, a run in another tab and a run in another
process all show the same panels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ttdr.events import SkippedSource
from ttdr.models import EventKind, RunEvent, RunStatus, Stage

PanelState = Literal["pending", "running", "complete", "error"]

TITLES = {
    Stage.run: "Setup",
    Stage.plan: "Plan",
    Stage.draft: "First draft R0",
    Stage.question: "Search questions",
    Stage.search: "Search",
    Stage.answer: "Answers",
    Stage.revise: "Denoising R(t-1) → R(t)",
    Stage.report: "Final report",
    Stage.judge: "Self-evolution judge",
}


@dataclass(frozen=True)
class StagePanel:
    stage: Stage
    state: PanelState
    events: list[RunEvent]

    @property
    def title(self) -> str:
        return TITLES.get(self.stage, self.stage.value.capitalize())

    @property
    def latest(self) -> str:
        return self.events[-1].message if self.events else "not started"

    @property
    def warnings(self) -> int:
        return sum(e.kind is EventKind.warning for e in self.events)

    @staticmethod
    def line(run_event: RunEvent) -> str:
        """An event as one plain-text line (the caller escapes it)."""
        step = f"Step {run_event.iteration} · " if run_event.iteration else ""
        return f"{step}{run_event.message}  ({run_event.elapsed_s:.1f} s)"


def stage_panels(events: list[RunEvent], status: RunStatus) -> list[StagePanel]:
    """One panel per stage, in the order the run reached them, then the stages not reached;
    the stage at work is running (or in error, when the run ended there)."""
    current = current_stage(events)
    reached = list(dict.fromkeys(e.stage for e in events))
    panels = []
    for stage in reached + [s for s in Stage if s not in reached]:
        mine = [e for e in events if e.stage is stage]
        if not mine:
            state: PanelState = "pending"
        elif stage is not current or status in (RunStatus.done, RunStatus.review):
            state = "complete"
        elif status is RunStatus.running:
            state = "running"
        else:
            state = "error"
        panels.append(StagePanel(stage, state, mine))
    return panels


def current_stage(events: list[RunEvent]) -> Stage | None:
    """The stage of the latest event, not counting the run's closing event."""
    for run_event in reversed(events):
        closing = run_event.stage is Stage.run and run_event.kind in (
            EventKind.finished,
            EventKind.error,
        )
        if not closing:
            return run_event.stage
    return None


def run_warnings(events: list[RunEvent]) -> list[str]:
    """Warnings worth a banner: everything but skipped pages (the sources panel lists those)."""
    seen: list[str] = []
    for run_event in events:
        skipped_page = isinstance(run_event.payload, SkippedSource)
        banner = run_event.kind is EventKind.warning and not skipped_page
        if banner and run_event.message not in seen:
            seen.append(run_event.message)
    return seen
