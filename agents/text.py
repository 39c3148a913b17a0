"""Cleaning model output before it reaches the draft: small models pad their answers with
reasoning blocks, headings and preambles that a report must not contain.
"""

from __future__ import annotations

import re

THINK_BLOCK = re.compile(r"<think>.*?(</think>|$)", re.DOTALL | re.IGNORECASE)
PREAMBLE = re.compile(
    r"^(sure[,!.]?|certainly[,!.]?|here(?:'s| is| are)\b[^\n:]*:|"
    r"(?:the )?(?:rewritten|revised|updated) section[^\n:]*:)\s*",
    re.IGNORECASE,
)


def clean_model_text(text: str, *, heading: str | None = None) -> str:
    """Strip think blocks, a leading preamble and a heading that repeats the section title."""
    text = THINK_BLOCK.sub("", text).strip()
    while (stripped := PREAMBLE.sub("", text, count=1).strip()) != text:
        text = stripped
    lines = text.splitlines()
    while lines and _is_heading(lines[0], heading):
        lines.pop(0)
    return "\n".join(lines).strip()


def _is_heading(line: str, title: str | None) -> bool:
    stripped = line.strip().strip("*").strip()
    if line.lstrip().startswith("#"):
        return True
    return bool(title) and stripped.rstrip(":").lower() == title.lower()


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def clip_to_sentence(text: str, limit: int) -> str:
    """At most `limit` characters, cut after the last full sentence when there is one."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    clipped = text[:limit]
    end = max(clipped.rfind(". "), clipped.rfind("? "), clipped.rfind("! "))
    return clipped[: end + 1] if end > limit // 3 else clipped.rsplit(" ", 1)[0] + " …"
