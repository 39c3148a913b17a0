"""A run as a PDF, with fpdf2 (pure Python: no system libraries, no browser).

The report's Markdown is rendered to HTML by the same safe renderer as the HTML export (raw
HTML shown as text, images off, so no markup from a model or a page is ever interpreted and
nothing is fetched) and laid out by fpdf2's HTML support, which keeps tables, code blocks and
links. The references are written from the run's citations, each a link to its source.

fpdf2 ships no font beyond the 14 PDF core fonts, which know Latin-1 only. DejaVu (Latin,
Greek, Cyrillic and more) is looked for where systems keep it (Debian's fonts-dejavu-core,
Fedora's dejavu-sans-fonts, a user's font folder, matplotlib's copy); without it the PDF is
written in Helvetica with the other characters transliterated (é stays, "—" becomes "-", what
has no Latin-1 form becomes "?") and `PdfExport.warning` says so in one line.
"""

from __future__ import annotations

import html
import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

from ttdr.export import linkable
from ttdr.language import references_heading
from ttdr.models import Citation

FONT_FILES = {
    "": "DejaVuSans.ttf",
    "B": "DejaVuSans-Bold.ttf",
    "I": "DejaVuSans-Oblique.ttf",
    "BI": "DejaVuSans-BoldOblique.ttf",
}
MONO_FILE = "DejaVuSansMono.ttf"
_ASCII_FORMS = str.maketrans(
    {"—": "-", "–": "-", "‘": "'", "’": "'", "“": '"', "”": '"', "…": "...", "•": "*", "›": ">"}
)
_TEXT = "#222222"


@dataclass(frozen=True)
class PdfExport:
    data: bytes
    warning: str | None = None  # one line, when the text had to be transliterated


def font_folders() -> list[Path]:
    """Where DejaVu is usually installed, most specific first."""
    home = Path.home()
    folders = [
        home / ".local" / "share" / "fonts",
        home / ".fonts",
        home / "Library" / "Fonts",
        Path("/usr/share/fonts"),
        Path("/usr/local/share/fonts"),
        Path("/Library/Fonts"),
        Path(os.environ.get("WINDIR", "C:/Windows")) / "Fonts",
    ]
    spec = find_spec("matplotlib")  # its wheel carries DejaVu; found without importing it
    if spec is not None and spec.submodule_search_locations:
        folders += [Path(p) / "mpl-data" / "fonts" / "ttf" for p in spec.submodule_search_locations]
    return folders


def find_dejavu(folders: Iterable[Path]) -> dict[str, Path]:
    """The DejaVu files found under `folders` by style ("", "B", "I", "BI", "mono"); the
    regular face is enough (the others fall back to it)."""
    wanted = {name: style for style, name in FONT_FILES.items()} | {MONO_FILE: "mono"}
    found: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for root, _dirs, files in os.walk(folder):
            for name in files:
                if name in wanted and wanted[name] not in found:
                    found[wanted[name]] = Path(root) / name
            if len(found) == len(wanted):
                return found
    return found


def render_pdf(
    title: str,
    body_html: str,
    references: Sequence[Citation],
    footer: str,
    *,
    folders: Iterable[Path] | None = None,
    language: str = "en",
) -> PdfExport:
    """The PDF of a report: `body_html` (from the safe renderer), then the references."""
    from fpdf import FPDF, FontFace, TextStyle

    fonts = find_dejavu(font_folders() if folders is None else folders)
    text = body_html + references_html(references, language) + _footer_html(footer)
    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_creator("ttdr")
    pdf.set_margins(18, 18, 18)
    pdf.set_auto_page_break(True, margin=18)
    if "" in fonts:
        for style in FONT_FILES:
            pdf.add_font("DejaVu", style, str(fonts.get(style, fonts[""])))
        pdf.add_font("DejaVuMono", "", str(fonts.get("mono", fonts[""])))
        family, mono, warning = "DejaVu", "DejaVuMono", None
    else:
        family, mono = "helvetica", "courier"
        text, lost = transliterate(text)
        warning = (
            "No DejaVu font found (install fonts-dejavu-core or put DejaVuSans.ttf in "
            "~/.local/share/fonts): the PDF uses Helvetica, "
            + (
                f"and {lost} character(s) without a Latin-1 form are shown as '?'."
                if lost
                else "which holds every character of this report."
            )
        )
    headings = {
        f"h{level}": TextStyle(
            font_family=family,
            font_style="B",
            font_size_pt=size,
            color=_TEXT,
            t_margin=6,
            b_margin=2,
        )
        for level, size in zip(range(1, 7), (20, 15, 13, 12, 11, 10), strict=True)
    }
    styles = {
        **headings,
        "pre": TextStyle(font_family=mono, font_size_pt=9, color="#333333", t_margin=3, b_margin=3),
        "code": FontFace(family=mono, color="#333333"),
        "blockquote": TextStyle(color="#555555", t_margin=3, l_margin=6, b_margin=3),
        "a": FontFace(color="#1a4fb5", emphasis="U"),
    }
    pdf.add_page()
    pdf.set_font(family, size=10.5)
    pdf.set_text_color(_TEXT)
    try:
        pdf.write_html(
            text,
            font_family=family,
            tag_styles=styles,
            li_prefix_color=_TEXT,
            table_line_separators=True,
            warn_on_tags_not_matching=False,
        )
    except Exception as exc:  # fpdf2's layout refused some construct: keep every word anyway
        return PdfExport(
            _plain_pdf(title, html_text(text), family),
            f"The PDF layout failed ({type(exc).__name__}: {exc}); it holds the report as "
            "plain text instead.",
        )
    return PdfExport(bytes(pdf.output()), warning)


def _plain_pdf(title: str, text: str, family_fonts) -> bytes:
    """The report's text, line by line, for when the HTML layout cannot place it."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.set_title(title)
    pdf.set_margins(18, 18, 18)
    pdf.add_page()
    pdf.set_font(family_fonts if isinstance(family_fonts, str) else "helvetica", size=10)
    pdf.multi_cell(0, 5, text)
    return bytes(pdf.output())


def html_text(markup: str) -> str:
    """The text of `markup`, a block per line (for the plain fallback)."""
    from html.parser import HTMLParser

    parts: list[str] = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag: str, attrs) -> None:
            if tag in ("p", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "pre", "br"):
                parts.append("\n")

        def handle_data(self, data: str) -> None:
            parts.append(data)

    Collect().feed(markup)
    return "\n".join(line.rstrip() for line in "".join(parts).splitlines()).strip()


def references_html(references: Sequence[Citation], language: str = "en") -> str:
    """The references list as HTML: each title a link to its source, the address beside it."""
    heading, none_cited = references_heading(language)
    if not references:
        return f"<h2>{heading}</h2><p>{none_cited}</p>"
    items = []
    for citation in references:
        label = html.escape(citation.title or citation.url)
        if linkable(citation.url):
            url = html.escape(citation.url, quote=True)
            link = f'<a href="{url}">{label}</a> — <a href="{url}">{url}</a>'
            items.append(f"<p>[{citation.number}] {link}</p>")
        else:
            items.append(f"<p>[{citation.number}] {label} — {html.escape(citation.url)}</p>")
    return f"<h2>{heading}</h2>" + "".join(items)


def transliterate(text: str) -> tuple[str, int]:
    """`text` in Latin-1 for the core fonts, and how many characters had no form there."""
    text = unicodedata.normalize("NFC", text.translate(_ASCII_FORMS))
    out, lost = [], 0
    for char in text:
        if ord(char) < 256:
            out.append(char)
            continue
        base = unicodedata.normalize("NFKD", char).encode("latin-1", "ignore").decode("latin-1")
        if base.strip():
            out.append(base)
        else:
            out.append("?")
            lost += 1
    return "".join(out), lost


def _footer_html(footer: str) -> str:
    return f'<p><font color="#777777" size="8">{html.escape(footer)}</font></p>'
