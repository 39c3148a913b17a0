"""Exporting a saved run as Markdown, JSON, a standalone HTML page, PDF or Word (.docx).

HTML is rendered with raw HTML disabled and images off: report text comes from a model and from
fetched pages, so any markup inside it is shown as text, never interpreted, and no export ever
fetches anything. PDF and DOCX are laid out from the same parse (export_pdf.py, export_docx.py),
with the references written from the run's citations as links.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Literal

from markdown_it import MarkdownIt
from markdown_it.token import Token

from ttdr.models import Citation, RunDetail, RunStatus

ExportFormat = Literal["md", "json", "html", "pdf", "docx"]
FORMATS: tuple[ExportFormat, ...] = ("md", "json", "html", "pdf", "docx")
BINARY_FORMATS = frozenset({"pdf", "docx"})
MEDIA_TYPES = {
    "md": "text/markdown",
    "json": "application/json",
    "html": "text/html",
    "pdf": "application/pdf",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_SUFFIXES = {".md": "md", ".markdown": "md", ".json": "json", ".html": "html", ".htm": "html",
             ".pdf": "pdf", ".docx": "docx"}  # fmt: skip

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.55;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
    "padding:.3rem .5rem}code{background:#f4f4f4;padding:0 .2rem}footer{color:#777;"
    "font-size:.85rem;margin-top:3rem}"
)


def format_for(path: Path | None) -> ExportFormat | None:
    """The export format a file name asks for by its suffix (`report.pdf` → pdf), or None."""
    if path is None:
        return None
    return _SUFFIXES.get(path.suffix.lower())  # type: ignore[return-value]


def report_markdown(run: RunDetail) -> str:
    if run.report is not None:
        return run.report.markdown
    if run.status is RunStatus.review and run.plan is not None and not run.drafts_list:
        sections = enumerate(run.plan.sections, 1)
        outline = "".join(f"{n}. **{s.title}**: {s.question}\n" for n, s in sections)
        return (
            f"# {run.question}\n\n> This run waits for its plan to be reviewed "
            f"(`ttdr research --resume {run.id}`); its plan:\n\n{outline}"
        )
    # A failed or interrupted run has no report: export its newest draft, clearly labelled.
    latest = run.drafts_list[-1].text if run.drafts_list else "(no draft was written)"
    return (
        f"# {run.question}\n\n> This run is **{run.status.value}**; this is its latest draft, "
        f"not a finished report.\n\n{latest}"
    )


def export_run(run: RunDetail, fmt: ExportFormat) -> str:
    """A text export (md, json, html); PDF and DOCX are bytes: `export_bytes`."""
    if fmt == "md":
        return report_markdown(run)
    if fmt == "json":
        return run.model_dump_json(indent=2)
    if fmt == "html":
        body = markdown_parser().render(report_markdown(run))
        return (
            f'<!doctype html>\n<html lang="{report_language(run)}"><head><meta charset="utf-8">'
            f"<title>{html.escape(run.question)}</title><style>{STYLE}</style></head>"
            f"<body>{body}<footer>{html.escape(footer(run))}</footer></body></html>\n"
        )
    if fmt in BINARY_FORMATS:
        raise ValueError(f"{fmt} is a binary format: use export_bytes")
    raise ValueError(f"unknown export format {fmt!r}: use {', '.join(FORMATS)}")


def export_bytes(run: RunDetail, fmt: ExportFormat) -> bytes:
    """Any export as the bytes of its file (text formats in UTF-8)."""
    if fmt == "pdf":
        return export_pdf(run).data
    if fmt == "docx":
        from ttdr.export_docx import render_docx

        body, references = report_body(run)
        tokens = markdown_parser().parse(body)
        return render_docx(run.question, tokens, references, footer(run), report_language(run))
    return export_run(run, fmt).encode("utf-8")


def export_pdf(run: RunDetail, **options):
    """The PDF with its warning (`PdfExport`), for callers that show the warning."""
    from ttdr.export_pdf import render_pdf

    body, references = report_body(run)
    parser = markdown_parser()
    tokens = flatten_table_cells(parser.parse(body))
    body_html = parser.renderer.render(tokens, parser.options, {})
    language = report_language(run)
    return render_pdf(
        run.question, body_html, references, footer(run), language=language, **options
    )


def report_language(run: RunDetail) -> str:
    """The language of the report's own headings (English for a run without a report)."""
    return run.report.language if run.report is not None else "en"


def report_body(run: RunDetail) -> tuple[str, list[Citation]]:
    """The report's Markdown without its references, and the references: a laid-out export
    writes them itself, as links. A run without a report gives its labelled latest draft."""
    if run.report is None:
        return report_markdown(run), []
    return run.report.body, list(run.report.references)


def footer(run: RunDetail) -> str:
    return (
        f"ttdr run {run.id} · {run.status.value} · {run.created_at:%Y-%m-%d %H:%M} UTC · "
        f"model {run.model}"
    )


def markdown_parser() -> MarkdownIt:
    """CommonMark with tables and strikethrough; raw HTML is text and images are not loaded
    (an image in a report would be fetched by the PDF writer)."""
    return (
        MarkdownIt("commonmark", {"html": False})
        .enable(["table", "strikethrough"])
        .disable("image")
    )


def flatten_table_cells(tokens: list[Token]) -> list[Token]:
    """Each table cell's inline markup as plain text (a link keeps its address in brackets):
    fpdf2 lays out a cell from one run of text and refuses markup inside one."""
    inside = False
    for token in tokens:
        if token.type in ("th_open", "td_open"):
            inside = True
        elif token.type in ("th_close", "td_close"):
            inside = False
        elif inside and token.type == "inline":
            token.children = [Token("text", "", 0, content=plain_text(token))]
    return tokens


def plain_text(inline: Token) -> str:
    parts: list[str] = []
    links: list[str] = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif child.type == "link_open":
            links.append(str(child.attrs.get("href") or ""))
        elif child.type == "link_close" and links:
            href = links.pop()
            parts.append(f" ({href})" if href else "")
    return "".join(parts)


def linkable(url: str) -> bool:
    """Only addresses a reader can follow become links (never `javascript:` from a page)."""
    return re.match(r"(?i)(https?|file|mailto):", url or "") is not None
