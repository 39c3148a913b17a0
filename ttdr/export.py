"""Exporting a saved run as Markdown, JSON or a standalone HTML page.

HTML is rendered with raw HTML disabled: report text comes from a model and from fetched
pages, so any markup inside it is shown as text, never interpreted.
"""

from __future__ import annotations

import html
from typing import Literal

from markdown_it import MarkdownIt

from ttdr.models import RunDetail

ExportFormat = Literal["md", "json", "html"]

STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;"
    "line-height:1.55;color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
    "padding:.3rem .5rem}code{background:#f4f4f4;padding:0 .2rem}footer{color:#777;"
    "font-size:.85rem;margin-top:3rem}"
)


def report_markdown(run: RunDetail) -> str:
    if run.report is not None:
        return run.report.markdown
    # A failed or interrupted run has no report: export its newest draft, clearly labelled.
    latest = run.drafts_list[-1].text if run.drafts_list else "(no draft was written)"
    return (
        f"# {run.question}\n\n> This run is **{run.status.value}**; this is its latest draft, "
        f"not a finished report.\n\n{latest}"
    )


def export_run(run: RunDetail, fmt: ExportFormat) -> str:
    if fmt == "md":
        return report_markdown(run)
    if fmt == "json":
        return run.model_dump_json(indent=2)
    if fmt == "html":
        renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
        body = renderer.render(report_markdown(run))
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(run.question)}</title><style>{STYLE}</style></head>"
            f"<body>{body}<footer>ttdr run {html.escape(run.id)} · {run.status.value} · "
            f"{run.created_at:%Y-%m-%d %H:%M} UTC · model {html.escape(run.model)}</footer>"
            "</body></html>\n"
        )
    raise ValueError(f"unknown export format {fmt!r}: use md, json or html")
