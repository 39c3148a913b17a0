"""Reading documents: each format's text and title, and a clear reason when there is none."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.search.extract import ExtractionError, decode_text, extract_document

CORPUS = Path(__file__).parent / "fixtures" / "corpus"


def test_html_keeps_the_article_and_drops_the_navigation() -> None:
    document = extract_document(
        (CORPUS / "tides.html").read_bytes(), content_type="text/html; charset=utf-8"
    )

    assert document.title == "Why the sea has tides"
    assert "gravity of the Moon" in " ".join(document.text.split())
    assert "Home" not in document.text
    assert "\n\n" in document.text  # paragraphs stay apart for the passage splitter


def test_pdf_text_and_title_come_from_the_file() -> None:
    document = extract_document((CORPUS / "kv-cache.pdf").read_bytes(), name="kv-cache.pdf")

    assert document.title == "Caching keys and values in block diffusion"
    assert "reuses its KV cache" in document.text


def test_markdown_title_is_the_first_heading_and_text_falls_back_to_the_file_name() -> None:
    markdown = extract_document(b"Intro line\n\n# Real title\n\nBody.", name="notes.md")
    text = extract_document(b"Just words.", name="field_notes-2024.txt")

    assert markdown.title == "Real title"
    assert text.title == "field notes 2024"
    assert text.text == "Just words."


def test_a_pdf_is_recognised_by_its_bytes_whatever_it_is_called() -> None:
    data = (CORPUS / "kv-cache.pdf").read_bytes()

    document = extract_document(data, content_type="application/octet-stream", name="download")

    assert "block diffusion" in document.text


@pytest.mark.parametrize(
    ("data", "content_type", "name", "reason"),
    [
        (b"   \n\t", "text/plain", "", "empty page"),
        (b"abc\x00\x01\x02def", None, "data.txt", "binary content"),
        (b"\x89PNG\r\n", "image/png", "logo", "not text (image/png)"),
        (
            b"<html><head><title>T</title></head><body><script>go()</script></body></html>",
            "text/html",
            "",
            "empty page",
        ),
        (b"%PDF-1.4 garbage", "application/pdf", "", "unreadable PDF"),
    ],
)
def test_documents_without_text_say_why(
    data: bytes, content_type: str | None, name: str, reason: str
) -> None:
    with pytest.raises(ExtractionError) as caught:
        extract_document(data, content_type=content_type, name=name)

    assert caught.value.reason.startswith(reason)


def test_decoding_prefers_utf8_then_the_declared_charset() -> None:
    assert decode_text("déjà vu".encode()) == "déjà vu"
    assert decode_text("déjà vu".encode("cp1252"), "text/plain; charset=windows-1252") == "déjà vu"
    page = '<meta charset="iso-8859-1"><p>caf\xe9</p>'.encode("latin-1")
    assert "café" in decode_text(page, "text/html", html=True)


@pytest.mark.parametrize(
    ("text", "codec"),
    [
        ("Le système est prêt.", "latin-1"),
        ("système", "latin-1"),
        ("Grüße aus München — “quoted”", "cp1252"),
        ("Привет, как дела? Это тестовый текст.", "cp1251"),
        ("Příliš žluťoučký kůň úpěl ďábelské ódy.", "cp1250"),
        ("Καλημέρα κόσμε", "cp1253"),
    ],
)
def test_undeclared_legacy_text_decodes_as_written(text: str, codec: str) -> None:
    data = text.encode(codec)
    assert decode_text(data) == text
    page = f"<html><body><p>{text}</p></body></html>".encode(codec)
    assert text in extract_document(page, name="page.html").text


def test_html_date_and_language_come_from_the_page() -> None:
    page = (
        '<html lang="de-AT"><head><title>Gezeiten</title>'
        '<meta property="article:published_time" content="2024-03-05T10:00:00Z"></head>'
        "<body><article><h1>Gezeiten</h1><p>Der Mond zieht das Wasser der Ozeane an, und so "
        "entstehen zweimal am Tag Flut und Ebbe an den Küsten der Welt.</p></article></body>"
        "</html>"
    ).encode()

    document = extract_document(page, content_type="text/html")
    undated = extract_document((CORPUS / "tides.html").read_bytes(), content_type="text/html")

    assert (document.title, document.published, document.language) == (
        "Gezeiten",
        "2024-03-05",
        "de",
    )
    assert "zweimal am Tag" in document.text
    assert (undated.published, undated.language) == (None, "en")  # <html lang="en">, no date


def test_pdf_date_and_language_come_from_its_metadata() -> None:
    data = (CORPUS / "kv-cache.pdf").read_bytes()
    dated = data.replace(b"<< /Title (", b"<< /CreationDate (D:20230914120000Z) /Title (").replace(
        b"<< /Type /Catalog", b"<< /Lang (en-US) /Type /Catalog"
    )

    plain = extract_document(data)
    document = extract_document(dated)

    assert (plain.published, plain.language) == (None, None)
    assert (document.published, document.language) == ("2023-09-14", "en")
    assert document.title == "Caching keys and values in block diffusion"
