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


# A sentence also starts with an option or an identifier in lower case ("--fixup …",
# "rebase.autoSquash: …"), as manuals' definitions do.
SENTENCE_END = re.compile(
    r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[]|--?[a-z]|[a-z]\w*[._]\w|[a-z][\w.-]*:\s)"
)
TEMPLATE_FIELD = re.compile(r"\{[a-z_]+\}")


def split_sentences(text: str) -> list[str]:
    """Sentences of each paragraph (hard-wrapped lines rejoined); markdown headings are
    titles, not sentences, and are skipped."""
    sentences: list[str] = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [ln for ln in paragraph.splitlines() if not ln.lstrip().startswith("#")]
        joined = " ".join(" ".join(lines).split())
        sentences += [s.strip() for s in SENTENCE_END.split(joined) if s.strip()]
    return sentences


def clean_model_text(
    text: str, *, heading: str | None = None, instruction: str | None = None
) -> str:
    """Strip think blocks, a preamble, a heading that repeats the section title, sentences
    said twice, and sentences that merely echo the `instruction` template."""
    text = THINK_BLOCK.sub("", text).strip()
    while (stripped := PREAMBLE.sub("", text, count=1).strip()) != text:
        text = stripped
    lines = text.splitlines()
    while lines and _is_heading(lines[0], heading):
        lines.pop(0)
    return drop_repeats_and_echoes("\n".join(lines).strip(), instruction)


def drop_repeats_and_echoes(text: str, instruction: str | None) -> str:
    """Line by line, so lists keep their shape; blank lines between paragraphs survive."""
    template = _normalise(TEMPLATE_FIELD.sub(" ", instruction)) if instruction else ""
    kept_lines: list[str] = []
    seen: set[str] = set()
    for line in text.splitlines():
        kept = []
        for sentence in split_sentences(line):
            key = _normalise(sentence)
            if not key or key in seen or (template and len(key) > 20 and key in template):
                continue
            seen.add(key)
            kept.append(sentence)
        if kept or not line.strip():
            kept_lines.append(" ".join(kept))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept_lines)).strip()


def _normalise(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


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
