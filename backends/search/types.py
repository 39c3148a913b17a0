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
    published: str | None = None  # ISO date (YYYY-MM-DD) when the source says when
    language: str | None = None  # ISO 639-1 code when the source says which


SkipCategory = Literal[
    "robots",  # disallowed by robots.txt (or robots.txt unavailable)
    "address",  # refused address: private, loopback, link-local, multicast, reserved
    "timeout",
    "too_large",
    "not_text",  # binary, empty, unsupported content type, unreadable document
    "http",  # an HTTP error status
    "network",  # connection failed, too many redirects
    "",  # not classified (e.g. a local file that could not be read)
]


@dataclass(frozen=True)
class SkippedSource:
    """A source that gave no text; `reason` is short and user-facing."""

    url: str
    reason: str
    category: SkipCategory = ""


@dataclass
class SearchOutcome:
    passages: list[Passage] = field(default_factory=list)
    skipped: list[SkippedSource] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    backend: Literal["web", "local", "none"] = "none"
