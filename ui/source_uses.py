"""Which parts of a run use each retrieved source, and which pages were skipped and why."""

from __future__ import annotations

from dataclasses import dataclass

from ttdr.events import SkippedSource
from ttdr.models import RunDetail, RunEvent, Source


@dataclass(frozen=True)
class SourceUse:
    source: Source
    report_citations: list[int]  # the [n] markers the final report gives it
    answer_steps: list[int]  # the denoising steps whose answers cite it


def source_uses(run: RunDetail) -> list[SourceUse]:
    references = run.report.references if run.report else []
    return [
        SourceUse(
            source=source,
            report_citations=[c.number for c in references if c.source_number == source.number],
            answer_steps=sorted(
                {qa.iteration for qa in run.qa_pairs if source.number in qa.source_numbers}
            ),
        )
        for source in run.sources_list
    ]


def skipped_sources(events: list[RunEvent]) -> list[SkippedSource]:
    """Each skipped address once, with the reason it was first skipped for."""
    skipped: dict[str, SkippedSource] = {}
    for run_event in events:
        page = run_event.payload
        if isinstance(page, SkippedSource) and page.url and page.url not in skipped:
            skipped[page.url] = page
    return list(skipped.values())
