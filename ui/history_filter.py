"""The History page's filters: words in the question or id, statuses, a range of dates."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from ttdr.models import RunStatus, RunSummary


def filter_runs(
    runs: list[RunSummary],
    text: str = "",
    statuses: Sequence[RunStatus] = (),
    dates: Sequence[date] = (),
) -> list[RunSummary]:
    """Runs whose question (or id) holds every word of `text`, in `statuses` (all when
    empty), started within `dates` (UTC days, inclusive; one date means that day)."""
    words = text.lower().split()
    first, last = (dates[0], dates[-1]) if dates else (None, None)
    kept = []
    for run in runs:
        haystack = f"{run.question} {run.id}".lower()
        if not all(word in haystack for word in words):
            continue
        if statuses and run.status not in statuses:
            continue
        day = run.created_at.date()
        if first is not None and last is not None and not first <= day <= last:
            continue
        kept.append(run)
    return kept
