""".docx .pptx .xlsx .epub .csv in the local index, through markitdown: files written here by
python-docx, python-pptx and openpyxl (and an EPUB and a CSV built by hand), indexed by the
real `LocalIndex` in a real SQLite file, and found again by search."""

from __future__ import annotations

import zipfile
from pathlib import Path

import docx
import openpyxl
import pptx
import pytest
from typer.testing import CliRunner

import backends.search.office as office
from backends.search import LocalIndex, extract_document
from backends.search.extract import SUPPORTED_SUFFIXES, ExtractionError
from ttdr.cli import app


def write_docx(path: Path) -> Path:
    document = docx.Document()
    document.add_heading("Harbour survey", level=1)
    document.add_heading("Breakwaters", level=2)
    document.add_paragraph("The granite breakwater at Cherbourg shelters the roadstead.")
    table = document.add_table(rows=2, cols=2)
    for cell, text in zip(table._cells, ["pier", "length", "Querqueville", "1 km"], strict=True):
        cell.text = text
    document.save(str(path))
    return path


def write_pptx(path: Path) -> Path:
    deck = pptx.Presentation()
    slide = deck.slides.add_slide(deck.slide_layouts[1])
    slide.shapes.title.text = "Spring tides"
    slide.placeholders[1].text = "Sun and moon aligned give the largest tidal range."
    deck.save(str(path))
    return path


def write_xlsx(path: Path) -> Path:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "Ports"
    sheet.append(["port", "tidal range"])
    sheet.append(["Granville", "14 m"])
    book.save(path)
    return path


def write_epub(path: Path) -> Path:
    chapter = (
        '<?xml version="1.0" encoding="utf-8"?><html xmlns="http://www.w3.org/1999/xhtml">'
        "<head><title>Chapter 1</title></head><body><h1>Amphidromic points</h1>"
        "<p>Around an amphidromic point the tide rotates with no vertical motion.</p>"
        "</body></html>"
    )
    package = (
        '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
        'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
        '<dc:title>Tidal Atlas</dc:title><dc:identifier id="id">atlas</dc:identifier>'
        "<dc:language>en</dc:language></metadata><manifest>"
        '<item id="c1" href="c1.xhtml" media-type="application/xhtml+xml"/></manifest>'
        '<spine><itemref idref="c1"/></spine></package>'
    )
    container = (
        '<?xml version="1.0"?><container version="1.0" '
        'xmlns="urn:oasis:names:tc:opendocument:xmlns:container"><rootfiles>'
        '<rootfile full-path="OEBPS/content.opf" media-type="application/oebps-package+xml"/>'
        "</rootfiles></container>"
    )
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        archive.writestr("META-INF/container.xml", container)
        archive.writestr("OEBPS/content.opf", package)
        archive.writestr("OEBPS/c1.xhtml", chapter)
    return path


def write_csv(path: Path) -> Path:
    path.write_text("station,mean range\nSaint-Malo,8.0 m\nZürich-See,0 m\n", encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir()
    write_docx(docs / "survey.docx")
    write_pptx(docs / "tides.pptx")
    write_xlsx(docs / "ports.xlsx")
    write_epub(docs / "atlas.epub")
    write_csv(docs / "stations.csv")
    return docs


def test_the_new_formats_are_supported_suffixes() -> None:
    assert {".docx", ".pptx", ".xlsx", ".epub", ".csv"} <= SUPPORTED_SUFFIXES


def test_each_format_is_indexed_and_found_by_what_it_says(folder: Path, tmp_path: Path) -> None:
    index = LocalIndex(tmp_path / "index.db")
    report = index.add(folder)
    assert (report.added, report.skipped) == (5, [])
    expectations = {
        "granite breakwater Cherbourg": ("survey.docx", "Harbour survey › Breakwaters"),
        "Querqueville pier length": ("survey.docx", None),  # a cell of the Word table
        "sun moon aligned tidal range": ("tides.pptx", None),
        "Granville": ("ports.xlsx", None),  # a cell of the sheet
        "amphidromic point rotates": ("atlas.epub", "Tidal Atlas"),
        "Saint-Malo mean range": ("stations.csv", None),
    }
    for query, (name, title) in expectations.items():
        best = index.search(query, k=1)[0]
        assert best.url == (folder / name).as_uri(), query
        if title is not None:
            assert best.title.startswith(title), best.title
    assert "Zürich-See" in index.search("Zürich", k=1)[0].text


def test_extraction_keeps_the_structure_that_search_uses(folder: Path) -> None:
    word = extract_document((folder / "survey.docx").read_bytes(), name="survey.docx")
    assert word.title == "Harbour survey" and "## Breakwaters" in word.text
    assert "| Querqueville | 1 km |" in word.text
    sheet = extract_document((folder / "ports.xlsx").read_bytes(), name="ports.xlsx")
    assert "## Ports" in sheet.text and "| Granville | 14 m |" in sheet.text
    slides = extract_document((folder / "tides.pptx").read_bytes(), name="tides.pptx")
    assert "Slide 1" in slides.text and "<!--" not in slides.text


def test_a_broken_or_oversized_document_is_skipped_with_its_reason(
    folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (folder / "broken.docx").write_bytes(b"this is not a zip archive at all")
    index = LocalIndex(tmp_path / "index.db")
    report = index.add(folder)
    assert report.added == 5
    (skipped,) = report.skipped
    assert skipped.url.endswith("broken.docx") and skipped.reason == (
        "unreadable DOCX (not a zip archive)"
    )
    monkeypatch.setattr(office, "MAX_UNPACKED_BYTES", 1000)  # every test file unpacks to more
    with pytest.raises(ExtractionError, match="XLSX too large to read"):
        extract_document((folder / "ports.xlsx").read_bytes(), name="ports.xlsx")


def test_ttdr_index_add_and_search_read_a_word_file(home: Path, tmp_path: Path) -> None:
    path = write_docx(tmp_path / "survey.docx")
    runner = CliRunner()
    added = runner.invoke(app, ["index", "add", str(path)])
    assert added.exit_code == 0 and "1 added" in added.stderr
    found = runner.invoke(app, ["index", "search", "granite breakwater", "--json"])
    assert found.exit_code == 0 and path.as_uri() in found.stdout
