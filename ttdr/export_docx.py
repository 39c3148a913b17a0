"""A run as a Word document, with python-docx (pure Python).

The report's Markdown is parsed by markdown-it (the parser of the HTML export, raw HTML kept as
text, images off) and its tokens become Word's own parts: headings, paragraphs with bold,
italic and code runs, real hyperlinks, bulleted and numbered lists, tables (Table Grid) and
code blocks in a monospace font. References come from the run's citations, each title a
hyperlink to its source.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field

from markdown_it.token import Token

from ttdr.language import references_heading
from ttdr.models import Citation

MONO = "Courier New"
LINK_COLOUR = "1A4FB5"


@dataclass
class _Inline:
    """The character formatting in force while walking an inline token's children."""

    bold: int = 0
    italic: int = 0
    strike: int = 0
    links: list[str | None] = field(default_factory=list)


def render_docx(
    title: str,
    tokens: Sequence[Token],
    references: Sequence[Citation],
    footer: str,
    language: str = "en",
) -> bytes:
    """The .docx bytes of a report whose body markdown-it parsed into `tokens`."""
    from docx import Document
    from docx.shared import Pt

    document = Document()
    document.core_properties.title = title[:255]
    document.core_properties.author = "ttdr"
    _Blocks(document).write(list(tokens))
    heading, none_cited = references_heading(language)
    document.add_heading(heading, level=2)
    if not references:
        document.add_paragraph(none_cited)
    for citation in references:
        paragraph = document.add_paragraph(f"[{citation.number}] ")
        _add_link(paragraph, citation.url, citation.title or citation.url)
        paragraph.add_run(" — ")
        _add_link(paragraph, citation.url, citation.url)
    closing = document.add_paragraph().add_run(footer)
    closing.font.size = Pt(8)
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


class _Blocks:
    """Block tokens → Word paragraphs and tables, one pass, keeping list and quote depth."""

    def __init__(self, document) -> None:
        self.document = document
        self.lists: list[str] = []  # "bullet" / "number", innermost last
        self.quote = 0

    def write(self, tokens: list[Token]) -> None:
        i = 0
        while i < len(tokens):
            token = tokens[i]
            kind = token.type
            if kind == "heading_open":
                level = min(int(token.tag[1:]), 9)
                self._inline(self.document.add_heading("", level=level), tokens[i + 1])
                i += 3
                continue
            if kind == "paragraph_open":
                self._inline(self._paragraph(), tokens[i + 1])
                i += 3
                continue
            if kind == "bullet_list_open":
                self.lists.append("bullet")
            elif kind == "ordered_list_open":
                self.lists.append("number")
            elif kind in ("bullet_list_close", "ordered_list_close"):
                self.lists.pop()
            elif kind == "blockquote_open":
                self.quote += 1
            elif kind == "blockquote_close":
                self.quote -= 1
            elif kind in ("fence", "code_block"):
                self._code(token.content)
            elif kind == "table_open":
                end = next(j for j in range(i, len(tokens)) if tokens[j].type == "table_close")
                self._table(tokens[i:end])
                i = end
            elif kind == "hr":
                self.document.add_paragraph("* * *").alignment = 1  # centred
            elif kind == "html_block":
                self._paragraph().add_run(token.content.rstrip("\n"))
            i += 1

    def _paragraph(self):
        if self.lists:
            depth = min(len(self.lists), 3)
            base = "List Bullet" if self.lists[-1] == "bullet" else "List Number"
            return self.document.add_paragraph(style=base if depth == 1 else f"{base} {depth}")
        if self.quote:
            return self.document.add_paragraph(style="Quote")
        return self.document.add_paragraph()

    def _code(self, text: str) -> None:
        from docx.shared import Pt

        paragraph = self.document.add_paragraph()
        lines = text.rstrip("\n").split("\n")
        for n, line in enumerate(lines):
            run = paragraph.add_run(line)
            run.font.name = MONO
            run.font.size = Pt(9)
            if n < len(lines) - 1:
                run.add_break()

    def _table(self, tokens: list[Token]) -> None:
        rows: list[list[Token]] = []
        for n, token in enumerate(tokens):
            if token.type == "tr_open":
                rows.append([])
            elif token.type in ("th_open", "td_open"):
                rows[-1].append(tokens[n + 1])
        if not rows:
            return
        columns = max(len(row) for row in rows)
        table = self.document.add_table(rows=len(rows), cols=columns)
        table.style = "Table Grid"
        for r, row in enumerate(rows):
            for c, inline in enumerate(row):
                cell = table.cell(r, c).paragraphs[0]
                self._inline(cell, inline, bold=r == 0)

    def _inline(self, paragraph, inline: Token, *, bold: bool = False) -> None:
        state = _Inline(bold=int(bold))
        for child in inline.children or []:
            kind = child.type
            if kind in ("strong_open", "strong_close"):
                state.bold += 1 if kind.endswith("open") else -1
            elif kind in ("em_open", "em_close"):
                state.italic += 1 if kind.endswith("open") else -1
            elif kind in ("s_open", "s_close"):
                state.strike += 1 if kind.endswith("open") else -1
            elif kind == "link_open":
                state.links.append(str(child.attrs.get("href") or "") or None)
            elif kind == "link_close":
                state.links.pop()
            elif kind == "softbreak":
                self._run(paragraph, " ", state)
            elif kind == "hardbreak":
                paragraph.add_run().add_break()
            elif kind == "code_inline":
                self._run(paragraph, child.content, state, mono=True)
            elif kind in ("text", "html_inline", "image"):
                self._run(paragraph, child.content, state)

    @staticmethod
    def _run(paragraph, text: str, state: _Inline, *, mono: bool = False) -> None:
        if not text:
            return
        href = state.links[-1] if state.links else None
        if href:
            _add_link(paragraph, href, text, bold=state.bold > 0, italic=state.italic > 0)
            return
        run = paragraph.add_run(text)
        run.bold = state.bold > 0 or None
        run.italic = state.italic > 0 or None
        run.font.strike = state.strike > 0 or None
        if mono:
            run.font.name = MONO


def _add_link(paragraph, url: str, text: str, *, bold: bool = False, italic: bool = False):
    """A real Word hyperlink (python-docx has no call for one: a relationship and a
    `w:hyperlink` element around a run), coloured and underlined as Word draws links."""
    from docx.opc.constants import RELATIONSHIP_TYPE
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    from ttdr.export import linkable

    if not linkable(url):
        paragraph.add_run(text)
        return
    relation = paragraph.part.relate_to(url, RELATIONSHIP_TYPE.HYPERLINK, is_external=True)
    link = OxmlElement("w:hyperlink")
    link.set(qn("r:id"), relation)
    run = OxmlElement("w:r")
    properties = OxmlElement("w:rPr")
    colour = OxmlElement("w:color")
    colour.set(qn("w:val"), LINK_COLOUR)
    underline = OxmlElement("w:u")
    underline.set(qn("w:val"), "single")
    for flag, on in (("w:b", bold), ("w:i", italic)):
        if on:
            properties.append(OxmlElement(flag))
    properties.append(colour)
    properties.append(underline)
    run.append(properties)
    content = OxmlElement("w:t")
    content.text = text
    content.set(qn("xml:space"), "preserve")
    run.append(content)
    link.append(run)
    paragraph._p.append(link)
