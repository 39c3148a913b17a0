"""Citation markers: parsing and renumbering them.

A report may only cite what the run actually retrieved: every marker the model writes is
mapped to a stored source or removed, never shipped unresolved. Whether the source supports
the sentence is the ledger's job (agents/attribution.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable

# [3], [3, 5], [3,5], [3-4] are all written by small models; [^1] too.
MARKER = re.compile(r"\[\^?(\d+(?:\s*[,;–-]\s*\d+)*)\]")


def _numbers(group: str) -> list[int]:
    numbers: list[int] = []
    for part in re.split(r"\s*[,;]\s*", group):
        if re.fullmatch(r"\d+\s*[–-]\s*\d+", part):
            low, high = (int(x) for x in re.split(r"\s*[–-]\s*", part))
            if 0 < high - low < 20:
                numbers.extend(range(low, high + 1))
                continue
        numbers.extend(int(x) for x in re.findall(r"\d+", part))
    return numbers


def cited_numbers(text: str) -> list[int]:
    """Numbers cited in `text`, in order of first appearance, without repeats."""
    seen: dict[int, None] = {}
    for match in MARKER.finditer(text):
        for number in _numbers(match.group(1)):
            seen.setdefault(number, None)
    return list(seen)


def remap_citations(text: str, mapping: Callable[[int], int | None]) -> tuple[str, list[int]]:
    """Rewrite every marker through `mapping`; numbers it maps to None are dropped.

    Returns the new text and the numbers that were dropped, so callers can report them.
    """
    dropped: list[int] = []

    def replace(match: re.Match[str]) -> str:
        kept: list[int] = []
        for number in _numbers(match.group(1)):
            target = mapping(number)
            if target is None:
                dropped.append(number)
            elif target not in kept:
                kept.append(target)
        return "".join(f"[{n}]" for n in kept)

    rewritten = MARKER.sub(replace, text)
    rewritten = re.sub(r"[ \t]+([.,;:])", r"\1", rewritten)  # no orphan space before punctuation
    return re.sub(r"[ \t]{2,}", " ", rewritten), dropped
