"""Text from models and fetched pages, made safe to hand to `st.markdown`.

Nothing a model wrote or a page contained may become markup in the browser: no HTML, no image
that loads a remote address, no link to a script, no Streamlit colour directive or formula.
The app never passes `unsafe_allow_html`; these functions close the rest.

- `escape_markdown` for short text shown as-is (titles, questions, messages, labels).
- `safe_markdown` for a draft or report, whose headings, lists and emphasis should render.
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

# Every ASCII punctuation character that Markdown, GFM or Streamlit's extensions give a meaning.
_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")
_IMAGE = re.compile(r"!\[")
_DIRECTIVE = re.compile(r"(:[A-Za-z][\w-]*)\[")  # :red[...], :material/icon: stays harmless
_LINK_TARGET = re.compile(r"\]\(\s*(?:<|&lt;)?\s*([A-Za-z][A-Za-z0-9+.-]*):")
# A reference-style link definition, `[label]: target`, which makes every `[text][label]` a link.
# Matched anywhere, not only at a line's start: list items and indentation can hold one too.
# `<` is already `&lt;` when this runs.
_REFERENCE_TARGET = re.compile(r"\[([^\]\n]*)\]:[ \t]*(?:&lt;)?[ \t]*([A-Za-z][A-Za-z0-9+.-]*):")
_SAFE_SCHEMES = {"http", "https", "mailto"}
_HEADING = re.compile(r"^(#{1,6}) ", re.MULTILINE)


def escape_markdown(text: str) -> str:
    """`text` shown literally: every Markdown-significant character backslash-escaped."""
    return _SPECIAL.sub(r"\\\1", text)


def one_line(text: str, limit: int = 160) -> str:
    """Whitespace collapsed and cut to `limit` characters, for labels and lists."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def safe_markdown(text: str) -> str:
    """A model's Markdown with its structure kept and every active part disarmed."""
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("$", r"\$")
    text = _IMAGE.sub(r"!\\[", text)
    text = _DIRECTIVE.sub(r"\1\\[", text)
    text = _REFERENCE_TARGET.sub(_disarm_reference, text)
    return _LINK_TARGET.sub(_disarm_link, text)


def demote_headings(markdown: str, levels: int = 2) -> str:
    """Headings made smaller, so a report's `#` title does not dwarf the page around it."""
    return _HEADING.sub(lambda m: "#" * min(6, len(m.group(1)) + levels) + " ", markdown)


def _disarm_link(match: re.Match[str]) -> str:
    if match.group(1).lower() in _SAFE_SCHEMES:
        return match.group(0)
    return "]\\(" + match.group(0)[2:]


def _disarm_reference(match: re.Match[str]) -> str:
    """An unsafe definition's bracket escaped: it stays visible as text and defines nothing."""
    if match.group(2).lower() in _SAFE_SCHEMES:
        return match.group(0)
    return "\\" + match.group(0)


def link_markdown(title: str, url: str) -> str:
    """A link to a web address, or the escaped title and address where it is not http(s)."""
    if urlsplit(url).scheme.lower() in {"http", "https"}:
        target = quote(url, safe=":/?#@!&*+,;=%~-._")  # leaves no ( ) < > $ or space
        return f"[{escape_markdown(title)}](<{target}>)"
    return f"{escape_markdown(title)} · `{url.replace('`', '')}`"
