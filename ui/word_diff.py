"""What changed between two draft versions, word by word, as safe Markdown.

The denoising timeline shows R(t) against R(t-1): added words on green, removed words struck
through on red. Every word is escaped before it is wrapped, so a draft's text can never become
markup; only the highlight directives and the headings' `#` marks are ours.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Literal

from ui.safe_markdown import escape_markdown

ChangeKind = Literal["same", "added", "removed"]

# Words, single punctuation marks and runs of whitespace: "day." -> "day, spring" keeps "day".
_TOKENS = re.compile(r"\s+|\w+|[^\w\s]")
_HEADING = re.compile(r"^(#{1,6}) ")
_EDGES = re.compile(r"^(\s*)(.*?)(\s*)$", re.DOTALL)
_HIGHLIGHT = {"added": ":green-background[{}]", "removed": ":red-background[~~{}~~]"}


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    text: str


@dataclass(frozen=True)
class DiffSummary:
    added_words: int
    removed_words: int


def word_changes(old: str, new: str) -> list[Change]:
    """`new` as runs of unchanged, added and removed text (removed text placed where it was)."""
    before, after = _TOKENS.findall(old), _TOKENS.findall(new)
    matcher = difflib.SequenceMatcher(a=before, b=after, autojunk=False)
    changes: list[Change] = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            _append(changes, "same", "".join(after[j1:j2]))
            continue
        if tag in ("delete", "replace"):
            _append(changes, "removed", "".join(before[i1:i2]))
        if tag in ("insert", "replace"):
            _append(changes, "added", "".join(after[j1:j2]))
    return changes


def summarize(changes: list[Change]) -> DiffSummary:
    def words(kind: ChangeKind) -> int:
        return sum(len(c.text.split()) for c in changes if c.kind == kind)

    return DiffSummary(added_words=words("added"), removed_words=words("removed"))


def changes_markdown(changes: list[Change]) -> str:
    """Markdown for the changes, line by line, with every line break kept."""
    lines: list[list[Change]] = [[]]
    for change in changes:
        for number, part in enumerate(change.text.split("\n")):
            if number:
                lines.append([])
            if part:
                lines[-1].append(Change(change.kind, part))
    return "\n".join(_line_markdown(line) for line in lines)


def _line_markdown(line: list[Change]) -> str:
    if not line:
        return ""
    prefix = ""
    heading = _HEADING.match(line[0].text) if line[0].kind == "same" else None
    if heading:  # keep a heading a heading; the rest of the line is text like any other
        prefix = heading.group(0)
        line = [Change("same", line[0].text[len(prefix) :]), *line[1:]]
    # Leading spaces would turn a line into a code block, which shows the escapes.
    body = "".join(_piece_markdown(change) for change in line).lstrip(" \t")
    return prefix + body + ("" if prefix else "  ")  # two spaces: a hard line break


def _piece_markdown(change: Change) -> str:
    if change.kind == "same":
        return escape_markdown(change.text)
    lead, core, trail = _EDGES.match(change.text).groups()  # type: ignore[union-attr]
    if not core:
        return change.text
    return lead + _HIGHLIGHT[change.kind].format(escape_markdown(core)) + trail


def _append(changes: list[Change], kind: ChangeKind, text: str) -> None:
    if text:
        changes.append(Change(kind, text))
