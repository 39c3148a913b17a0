"""PDF and Word exports, read back as a person and a program would: the PDF page rendered to
an image by poppler's pdftoppm must not be blank, its text (pypdf) holds the headings, a table
cell and the code, and each reference is a link annotation; the .docx opened with python-docx
has the headings, a table and hyperlink relationships to the sources."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import docx
import pytest
from pypdf import PdfReader
from typer.testing import CliRunner

from tests.conftest import CORPUS
from ttdr.cli import app
from ttdr.cli.output import choose_format
from ttdr.errors import ExportFormatError
from ttdr.export import export_bytes, export_pdf, format_for
from ttdr.models import Citation, Report, ResearchConfig, RunDetail
from ttdr.store import Store

QUESTION = "How do tides work?"
BODY = """# How do tides work?

The moon's pull raises two bulges of water [1]; the sun adds spring tides [2].
Zürich, Ελληνικά and русский must survive the export.

## Heights by port

| port | range | note |
| --- | ---: | --- |
| Brest | 7 m | [spring](https://example.org/brest) `peak` |
| Saint-Malo | 12 m | **largest** in Europe |

## A tide model

```python
def tide(height_m):
    return 2 * height_m  # twice a day
```

> A quote with *emphasis* and ~~strike~~.

1. first
   - nested **bold**
2. second

<script>alert(1)</script> ![tracker](http://127.0.0.1:9/pixel.png)
"""
WEB = "https://oceanservice.noaa.gov/education/tides.html"
LOCAL = "file:///srv/notes/tides.md"


@pytest.fixture
def run(home: Path) -> RunDetail:
    store = Store(home / "ttdr.db")
    run_id = store.create_run(QUESTION, ResearchConfig(model="m"))
    references = [
        Citation(number=1, source_number=4, title="Tides — NOAA", url=WEB),
        Citation(number=2, source_number=7, title="Field notes", url=LOCAL),
    ]
    store.save_report(Report(run_id=run_id, question=QUESTION, body=BODY, references=references))
    return store.get_run(run_id)


def cli(*args: object):
    return CliRunner().invoke(app, [str(a) for a in args])


def link_targets(pdf: PdfReader) -> list[str]:
    return [
        str(annotation.get_object()["/A"]["/URI"])
        for page in pdf.pages
        for annotation in page.get("/Annots", [])
        if "/A" in annotation.get_object() and "/URI" in annotation.get_object()["/A"]
    ]


def test_history_export_writes_a_pdf_with_its_headings_table_code_and_linked_references(
    run: RunDetail, tmp_path: Path
) -> None:
    out = tmp_path / "report.pdf"
    result = cli("history", "export", run.id, "--format", "pdf", "--out", out)
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert data.startswith(b"%PDF-")
    pdf = PdfReader(io.BytesIO(data))
    text = " ".join(page.extract_text() for page in pdf.pages)
    for expected in ("How do tides work?", "Heights by port", "A tide model", "References"):
        assert expected in text
    assert "Saint-Malo" in text and "largest in Europe" in text  # table cells
    assert "def tide(height_m):" in text  # the code block
    assert "Zürich" in text and "Ελληνικά" in text and "русский" in text
    assert "<script>alert(1)</script>" in text  # model markup is shown, never run
    links = link_targets(pdf)
    assert WEB in links and LOCAL in links
    assert pdf.metadata.title == QUESTION


def test_the_pdf_page_renders_as_a_page_a_person_can_read(run: RunDetail, tmp_path: Path) -> None:
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (poppler-utils) is not installed: apt-get install poppler-utils")
    from PIL import Image

    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(export_bytes(run, "pdf"))
    subprocess.run(
        ["pdftoppm", "-png", "-r", "40", "-f", "1", "-l", "1", pdf, tmp_path / "page"], check=True
    )
    (png,) = tmp_path.glob("page*.png")
    page = Image.open(png).convert("L")
    width, height = page.size
    assert height > width  # a portrait A4 page
    inked = sum(page.histogram()[:200])  # pixels darker than light grey
    assert inked > 0.01 * width * height  # text, rules and a table, not an empty page
    for third in (0, 1):  # ink down the page, not one stray mark
        band = page.crop((0, third * height // 3, width, (third + 1) * height // 3))
        assert sum(band.histogram()[:100]) > 0


def test_without_a_unicode_font_the_pdf_is_still_written_and_says_what_it_lost(
    run: RunDetail,
) -> None:
    exported = export_pdf(run, folders=[])  # no DejaVu anywhere: the core fonts
    assert exported.warning is not None and "No DejaVu font found" in exported.warning
    assert "shown as '?'" in exported.warning
    text = PdfReader(io.BytesIO(exported.data)).pages[0].extract_text()
    assert "Zürich" in text and "Saint-Malo" in text  # Latin-1 text stays as it is
    assert "Ελληνικά" not in text and "?" in text
    assert WEB in link_targets(PdfReader(io.BytesIO(exported.data)))


def test_history_export_writes_a_docx_with_headings_a_table_and_hyperlinks(
    run: RunDetail, tmp_path: Path
) -> None:
    out = tmp_path / "report.docx"
    result = cli("history", "export", run.id, "--out", out)  # the suffix picks the format
    assert result.exit_code == 0, result.output
    document = docx.Document(str(out))
    paragraphs = document.paragraphs
    headings = [(p.style.name, p.text) for p in paragraphs if p.style.name.startswith("Heading")]
    assert ("Heading 1", QUESTION) in headings
    assert ("Heading 2", "Heights by port") in headings and ("Heading 2", "References") in headings
    (table,) = document.tables
    assert [cell.text for cell in table.rows[0].cells] == ["port", "range", "note"]
    assert [c.text for c in table.rows[2].cells] == ["Saint-Malo", "12 m", "largest in Europe"]
    hyperlinks = {
        rel.target_ref for rel in document.part.rels.values() if rel.reltype.endswith("/hyperlink")
    }
    assert {WEB, LOCAL, "https://example.org/brest"} <= hyperlinks
    code = next(p for p in document.paragraphs if p.text.startswith("def tide"))
    assert code.runs[0].font.name == "Courier New" and "twice a day" in code.text
    assert any("Ελληνικά" in p.text for p in document.paragraphs)
    assert document.core_properties.title == QUESTION


def test_a_binary_export_goes_to_a_pipe_but_never_to_a_terminal(
    run: RunDetail, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    piped = cli("history", "export", run.id, "--format", "docx")
    assert piped.exit_code == 0 and piped.stdout_bytes.startswith(b"PK")  # a zip: .docx
    named = tmp_path / "as-asked.pdf"  # an explicit --format wins over the suffix
    assert cli("history", "export", run.id, "--format", "md", "--out", named).exit_code == 0
    assert named.read_text().startswith("# How do tides work?")

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    with pytest.raises(ExportFormatError, match="PDF is a binary file: give --out"):
        choose_format("pdf", None)
    assert choose_format(None, Path("r.PDF")) == "pdf"
    assert choose_format("md", Path("r.pdf")) == "md"
    assert format_for(Path("notes.txt")) is None and choose_format(None, Path("notes.txt")) == "md"


def test_an_unknown_export_format_is_a_usage_error(run: RunDetail) -> None:
    result = cli("history", "export", run.id, "--format", "odt")
    assert result.exit_code == 2
    assert "--format must be md, json, html, pdf or docx, not 'odt'" in result.stderr


def test_research_out_report_pdf_writes_a_pdf(home: Path, tiny_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.pdf"
    result = cli(
        "research", QUESTION, "--model", tiny_model, "--search", "local", "--docs", CORPUS,
        "-n", 0, "--no-evolve", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and f"Report written to {out}" in result.stderr
    text = " ".join(page.extract_text() for page in PdfReader(out).pages)
    assert QUESTION in text and "References" in text
