"""What retrieval hands to the agent: ranked passages that remember where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# What a skipped source is belongs to the core: run events carry it to the app and the history.
from ttdr.events import SkipCategory, SkippedSource

__all__ = ["Passage", "SearchOutcome", "SkipCategory", "SkippedSource", "SourceKind"]

SourceKind = Literal["web", "local"]


@dataclass(frozen=True)
class Passage:
    """A span of a retrieved document; `url` is an http(s) URL or a file:// URI."""

    url: str
    title: str
    text: str
    score: float
    kind: SourceKind
    published: str | None = None  # ISO date (YYYY-MM-DD) when the source says when
    language: str | None = None  # ISO 639-1 code when the source says which


@dataclass
class SearchOutcome:
    passages: list[Passage] = field(default_factory=list)
    skipped: list[SkippedSource] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    backend: Literal["web", "local", "none"] = "none"
