"""What retrieval hands to the agent: ranked passages that remember where they came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

SourceKind = Literal["web", "local"]


@dataclass(frozen=True)
class Passage:
    """A span of a retrieved document; `url` is an http(s) URL or a file:// URI."""

    url: str
    title: str
    text: str
    score: float
    kind: SourceKind


@dataclass(frozen=True)
class SkippedSource:
    url: str
    reason: str


@dataclass
class SearchOutcome:
    passages: list[Passage] = field(default_factory=list)
    skipped: list[SkippedSource] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    backend: Literal["web", "local", "none"] = "none"
