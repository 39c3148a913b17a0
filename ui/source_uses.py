"""Which parts of a run use each retrieved source, and which pages were skipped and why."""

from __future__ import annotations

from dataclasses import dataclass

from ttdr.models import EventKind, RunDetail, RunEvent, Source, Stage


@dataclass(frozen=True)
class SourceUse:
    source: Source
    report_citations: list[int]  # the [n] markers the final report gives it
    answer_steps: list[int]  # the denoising steps whose answers cite it


@dataclass(frozen=True)
class SkippedSource:
    url: str
    reason: str
    category: str
    iteration: int | None


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
        data = run_event.data
        if run_event.stage is Stage.search and run_event.kind is EventKind.warning:
            url = data.get("url")
            if url and url not in skipped:
                skipped[url] = SkippedSource(
                    url=str(url),
                    reason=str(data.get("reason", "")),
                    category=str(data.get("category", "")),
                    iteration=run_event.iteration,
                )
    return list(skipped.values())
