"""HTML to passage-ready text that keeps what documentation puts in structure.

Manuals hold many of their facts in list items, definition lists (an option and what it does),
tables (a directive and its default) and under headings that say what a passage is about.
trafilatura, tuned for articles on the web, drops section headings of several documentation
generators, separates a definition from its term and keeps the source's hard line wraps, so a
sentence came out in pieces. So:

- **documents** (files of a local corpus: a manual whose whole body is content) are walked here:
  boilerplate elements (navigation, header, footer, scripts, forms) are pruned and every block
  becomes one paragraph: a heading as a `#` line, a prose paragraph with its wrapped lines
  rejoined, a list item, a definition prefixed with its terms ("--autosquash,
  --no-autosquash: When the commit…"), a table row ("Default: | On"), a code block;
- **web pages** go through trafilatura (boilerplate removal is what it is for) with
  `favor_recall` and markdown output, turned into the same paragraph form.

`headings_before` lets the index give each passage its section.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from lxml import etree
from lxml import html as lxml_html

PRUNED_TAGS = frozenset(
    "script style noscript nav header footer aside form button select textarea svg iframe "  # noqa: SIM905
    "template object embed head".split()
)
# class/id words of page furniture, matched as whole words of the attribute
PRUNED_NAMES = re.compile(
    r"(?:^|[\s_-])(nav|navbar|navigation|menu|sidebar|breadcrumbs?|footer|skip|toplang|"
    r"permalink|headerlink|cookie|banner)(?:$|[\s_-])",
    re.IGNORECASE,
)
BLOCK_TAGS = frozenset(
    "p div section article main body blockquote figure figcaption center address "  # noqa: SIM905
    "ul ol dl li dt dd table thead tbody tfoot tr caption pre h1 h2 h3 h4 h5 h6 hr br".split()
)
HEADING_TAGS = {f"h{n}": n for n in range(1, 7)}
MAX_HEADING_CHARS = 200

HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
LIST_ITEM = re.compile(r"^\s*(?:[-*+•]|\d+[.)])\s+")
TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")
INLINE_FENCE = re.compile(r"(?<=[^\s`])[ \t]*```[^\n]*\n(.*?)\n[ \t]*```[ \t]*", re.DOTALL)
ESCAPED = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>|~])")
EMPHASIS = re.compile(r"(\*\*|__)(.+?)\1|(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])")


# -- documents: walk the DOM ------------------------------------------------------------------


_UTF8_PARSER = lxml_html.HTMLParser(encoding="utf-8")


def document_to_text(page: str) -> str:
    """Every block of the page body as a paragraph, furniture pruned; '' if nothing is left."""
    try:
        # Bytes, because lxml refuses a str that declares an encoding; the page is already
        # decoded, so the parser must be told these bytes are utf-8 (it would guess latin-1).
        tree = lxml_html.document_fromstring(page.encode("utf-8"), parser=_UTF8_PARSER)
    except (ValueError, etree.ParserError):
        return ""
    body = tree.find("body")
    root = body if body is not None else tree
    _prune(root)
    walker = _Walker()
    walker.walk(root)
    return "\n\n".join(walker.finish())


def _prune(root) -> None:
    doomed = []
    for element in root.iter():
        if not isinstance(element.tag, str):  # comments, processing instructions
            doomed.append(element)
            continue
        names = f"{element.get('class', '')} {element.get('id', '')}"
        if element.tag in PRUNED_TAGS or (element is not root and PRUNED_NAMES.search(names)):
            doomed.append(element)
    for element in doomed:
        parent = element.getparent()
        if parent is not None:
            element.drop_tree()  # keeps the element's tail text in place


class _Walker:
    """Collects blocks; inline text gathers in `line` until a block element ends it."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.line: list[str] = []  # text nodes carry their own spaces: joined with ""
        self.terms: list[str] = []  # <dt> texts waiting for their <dd>
        self.label = ""  # the terms of the definition whose first block is still to come

    def flush(self) -> None:
        self.emit(" ".join("".join(self.line).split()))
        self.line.clear()

    def emit(self, block: str) -> None:
        if not block:
            return
        if self.label:  # the definition's first block carries its terms
            block, self.label = f"{self.label}: {block}", ""
        self.blocks.append(block)

    def finish(self) -> list[str]:
        self.flush()
        return self.blocks

    def walk(self, element) -> None:
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag in HEADING_TAGS:
            self.flush()
            text = " ".join(element.text_content().replace("¶", " ").split())
            if text:
                self.blocks.append("#" * HEADING_TAGS[tag] + " " + text[:MAX_HEADING_CHARS])
        elif tag == "pre":
            self.flush()
            code = element.text_content().strip("\n")
            if code.strip():
                # indented like markdown's code blocks, so readers tell code from prose (and a
                # shell comment is not taken for a heading)
                self.emit("\n".join("    " + ln.rstrip() for ln in code.splitlines()))
        elif tag == "tr":
            self.flush()
            cells = [c for c in element if c.tag in {"td", "th"}]
            if any(c.find(".//table") is not None for c in cells):
                for cell in cells:  # a table inside a cell: its rows are rows of their own
                    self._children(cell)
                    self.flush()
            else:
                texts = [" ".join(" ".join(c.itertext()).split()) for c in cells]
                self.emit(" | ".join(t for t in texts if t))
        elif tag == "dt":
            self.flush()
            term = " ".join(element.text_content().split())
            if term:
                self.terms.append(term)
        elif tag == "dd":
            self.flush()
            self.label, self.terms = ", ".join(self.terms), []
            self._children(element)
            self.flush()
            self.label = ""
        elif tag == "br":
            self.line.append(" ")
        elif tag in BLOCK_TAGS:
            self.flush()
            self._children(element)
            self.flush()
        else:  # inline
            self._children(element)
        if element.tail:
            self.line.append(element.tail)

    def _children(self, element) -> None:
        if element.text:
            self.line.append(element.text)
        for child in element:
            self.walk(child)


# -- web pages: trafilatura's markdown --------------------------------------------------------


def page_to_text(page: str, url: str | None = None) -> str:
    """The main text of a web page, in the same paragraph form; '' when trafilatura finds
    none."""
    import trafilatura  # slow to import; only pay for it when a page is read

    markdown = trafilatura.extract(
        page,
        url=url,
        output_format="markdown",
        include_formatting=True,
        include_tables=True,
        include_comments=False,
        favor_recall=True,
    )
    return markdown_to_text(markdown or "")


def markdown_to_text(markdown: str) -> str:
    """One paragraph per block, blank lines between them; inline markdown removed."""
    markdown = markdown.replace("\r\n", "\n")
    # A code span that the page broke over lines comes out as a fence opened mid-sentence.
    markdown = INLINE_FENCE.sub(lambda m: " " + " ".join(m.group(1).split()) + " ", markdown)
    return "\n\n".join(_blocks(markdown))


def _blocks(markdown: str) -> Iterator[str]:
    paragraph: list[str] = []
    code: list[str] | None = None

    def flush() -> Iterator[str]:
        if paragraph:
            text = _inline(" ".join(paragraph))
            paragraph.clear()
            if text:
                yield text

    for line in markdown.split("\n"):
        if code is not None:  # inside a fenced block: keep lines as they are
            if FENCE.match(line):
                if any(c.strip() for c in code):
                    yield "\n".join(c.rstrip() for c in code).strip("\n")
                code = None
            else:
                code.append(line)
            continue
        stripped = line.strip()
        if FENCE.match(line):
            yield from flush()
            code = []
        elif not stripped:
            yield from flush()
        elif heading := HEADING.match(stripped):
            yield from flush()
            yield f"{heading.group(1)} {_inline(heading.group(2))}"
        elif TABLE_RULE.match(stripped):
            yield from flush()
        elif stripped.startswith("|"):
            yield from flush()
            cells = [_inline(c) for c in stripped.strip("|").split("|")]
            row = " | ".join(c for c in cells if c)
            if row:
                yield row
        elif LIST_ITEM.match(line):
            yield from flush()
            paragraph.append(LIST_ITEM.sub("", line, count=1))
        else:
            paragraph.append(stripped)
    yield from flush()
    if code:
        yield "\n".join(code).strip("\n")


def _inline(text: str) -> str:
    text = EMPHASIS.sub(lambda m: m.group(2) or m.group(3) or "", text)
    text = ESCAPED.sub(r"\1", text.replace("`", ""))
    return " ".join(text.split())


def headings_before(text: str) -> list[tuple[int, str]]:
    """(offset, heading) of every `#` heading line, in order: a passage's section is the last
    heading before it."""
    return [
        (m.start(), m.group(2).strip())
        for m in re.finditer(r"^(#{1,6})\s+(.+)$", text, flags=re.MULTILINE)
    ]
