"""Turn the bytes of one document (a fetched page or a local file) into title + plain text.

Web pages and local files go through the same function so that a PDF found on the web and a PDF
in the user's folder are read the same way. Failures raise `ExtractionError` with a short reason
that is shown to the user as the reason a source was skipped.
"""

from __future__ import annotations

import codecs
import io
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal
from urllib.parse import unquote, urlsplit

from backends.search.office import OFFICE_SUFFIXES, OfficeReadError, office_to_markdown

if TYPE_CHECKING:
    from pypdf import PdfReader

DocumentKind = Literal["html", "pdf", "text", "markdown", "office"]

SUPPORTED_SUFFIXES = frozenset(
    {".md", ".markdown", ".txt", ".html", ".htm", ".pdf", *OFFICE_SUFFIXES}
)
MAX_PDF_PAGES = 50
# Decoded drawing commands read from one PDF. A text page holds some 10-50 kB of them; pypdf
# parses about 0.2 MB a second, and a few kB of deflated commands can inflate to megabytes.
MAX_PDF_CONTENT_BYTES = 2_000_000
# Bumped whenever extraction changes what text a document gives: indexes re-read documents
# extracted by another version (backends/search/local_index.py).
EXTRACTOR_VERSION = "5"

_SUFFIX_KINDS: dict[str, DocumentKind] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
    **dict.fromkeys(OFFICE_SUFFIXES, "office"),
}
_CONTENT_TYPE_KINDS: dict[str, DocumentKind] = {
    "text/html": "html",
    "application/xhtml+xml": "html",
    "application/pdf": "pdf",
    "application/x-pdf": "pdf",
    "text/plain": "text",
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "office",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "office",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "office",
    "application/epub+zip": "office",
    "text/csv": "office",
}
_OFFICE_MEDIA_SUFFIXES = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/epub+zip": ".epub",
    "text/csv": ".csv",
}
# Content types that say "not a document" even when the suffix is missing or misleading.
_NON_TEXT_PREFIXES = ("image/", "audio/", "video/", "font/")
_SNIFF_BYTES = 4096
_DETECTOR_TIE = 0.01  # chaos/coherence differences the charset detector cannot resolve


class ExtractionError(Exception):
    """The document has no usable text; `reason` is short and user-facing ("empty page")."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ExtractedDocument:
    title: str
    text: str
    published: str | None = None  # ISO date (YYYY-MM-DD) when the document says when
    language: str | None = None  # ISO 639-1 code ("en") when the document says which


def document_kind(content_type: str | None, name: str = "") -> DocumentKind | None:
    """Which reader applies: a known content type wins, then the file suffix; None if neither."""
    mime = media_type(content_type)
    if mime in _CONTENT_TYPE_KINDS:
        kind = _CONTENT_TYPE_KINDS[mime]
        # Servers label markdown as text/plain; the suffix is the better witness then.
        if kind == "text" and _suffix(name) in {".md", ".markdown"}:
            return "markdown"
        return kind
    return _SUFFIX_KINDS.get(_suffix(name))


def media_type(content_type: str | None) -> str:
    """`text/html; charset=utf-8` → `text/html`."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def extract_document(
    data: bytes, *, content_type: str | None = None, name: str = "", url: str | None = None
) -> ExtractedDocument:
    """Read `data` as HTML, PDF, markdown, plain text, or (office.py) DOCX, PPTX, XLSX, EPUB
    and CSV.

    `name` is a file name or URL path, used for the suffix and as the title of last resort;
    `url` lets trafilatura resolve links and read metadata. Raises `ExtractionError`.
    """
    if not data.strip():
        raise ExtractionError("empty page")
    mime = media_type(content_type)
    kind = document_kind(content_type, name)
    if data.startswith(b"%PDF-"):
        kind = "pdf"  # mislabelled PDFs are common (application/octet-stream, .txt)
    elif kind is None:
        if mime.startswith(_NON_TEXT_PREFIXES):
            raise ExtractionError(f"not text ({mime})")
        kind = _sniff_kind(data)
    if kind == "office":  # zip archives: NUL bytes are expected
        return _extract_office(data, mime, name, _title_from_name(name or url or ""))
    if kind != "pdf" and _looks_binary(data):
        raise ExtractionError("binary content")

    fallback_title = _title_from_name(name or url or "")
    if kind == "pdf":
        document = _extract_pdf(data, fallback_title)
    elif kind == "html":
        document = _extract_html(decode_text(data, content_type, html=True), url, fallback_title)
    elif kind == "markdown":
        document = _extract_markdown(decode_text(data, content_type), fallback_title)
    else:
        document = ExtractedDocument(fallback_title, _normalise(decode_text(data, content_type)))
    if not document.text.strip():
        raise ExtractionError("no text in PDF (scanned?)" if kind == "pdf" else "empty page")
    return document


def decode_text(data: bytes, content_type: str | None = None, *, html: bool = False) -> str:
    """Decode with utf-8 first (most of the web and of local files), then the declared charset,
    then a detector, then latin-1, which never fails."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    declared = [_charset_of(content_type)]
    if html:
        declared.append(_meta_charset(data[:_SNIFF_BYTES]))
    for charset in declared:
        if charset:
            try:
                return data.decode(charset)
            except (UnicodeDecodeError, LookupError):
                continue
    try:
        import charset_normalizer  # a dependency of trafilatura, so normally present
    except ImportError:
        return data.decode("latin-1")
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        return data.decode("latin-1")
    # On short or plain text the detector ranks several code pages equal and its first pick is
    # arbitrary ("système" read as cp1250 gives "systčme"). Among the equals, take windows-1252,
    # what browsers assume for an undeclared page (WHATWG), so Western text decodes as written;
    # a page the detector can tell apart (Cyrillic, Czech, Greek) has no cp1252 tie.
    tied = [
        match
        for match in matches
        if match.chaos <= best.chaos + _DETECTOR_TIE
        and match.coherence >= best.coherence - _DETECTOR_TIE
    ]
    chosen = next((match for match in tied if match.encoding == "cp1252"), best)
    return str(chosen)


def _extract_html(html: str, url: str | None, fallback_title: str) -> ExtractedDocument:
    from trafilatura.metadata import extract_metadata

    from backends.search.html_text import document_to_text, page_to_text

    try:
        # A file of the user's corpus is all content (a manual page): keep every block of
        # it. A web page needs trafilatura's boilerplate removal. Each falls back on the other.
        if url is None:
            text = document_to_text(html) or page_to_text(html)
        else:
            text = page_to_text(html, url) or document_to_text(html)
        metadata = extract_metadata(html, default_url=url)
    except Exception as error:  # one malformed page must not fail a whole search
        raise ExtractionError(f"unreadable HTML ({type(error).__name__})") from error
    title = (getattr(metadata, "title", None) or "") if metadata is not None else ""
    published = _iso_date(getattr(metadata, "date", None)) if metadata is not None else None
    # trafilatura only fills `language` when it runs a language detector (an optional extra),
    # so fall back to what the page declares.
    language = (getattr(metadata, "language", None) if metadata is not None else None) or (
        _html_language(html)
    )
    return ExtractedDocument(
        title.strip() or _html_title(html) or fallback_title,
        _normalise(text),
        published,
        _language_code(language),
    )


def _extract_office(data: bytes, mime: str, name: str, fallback_title: str) -> ExtractedDocument:
    suffix = _suffix(name) if _suffix(name) in OFFICE_SUFFIXES else _OFFICE_MEDIA_SUFFIXES[mime]
    try:
        markdown, title = office_to_markdown(data, suffix)
    except OfficeReadError as error:
        raise ExtractionError(str(error)) from error
    document = _extract_markdown(markdown, fallback_title)
    if not document.text.strip():
        raise ExtractionError(f"no text in {OFFICE_SUFFIXES[suffix]}")
    return ExtractedDocument(title or document.title, document.text)


def _extract_pdf(data: bytes, fallback_title: str) -> ExtractedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            raise ExtractionError("encrypted PDF")
        pages = _pdf_pages_text(reader)
        title, published, language = _pdf_metadata(reader)
    except ExtractionError:
        raise
    except PdfReadError as error:
        raise ExtractionError(f"unreadable PDF ({error})") from error
    except Exception as error:  # pypdf raises many kinds of errors on malformed input
        raise ExtractionError(f"unreadable PDF ({type(error).__name__})") from error
    text = _normalise("\n\n".join(page.strip() for page in pages if page.strip()))
    return ExtractedDocument(
        title or _first_line_title(text) or fallback_title, text, published, language
    )


def _pdf_pages_text(reader: PdfReader) -> list[str]:
    """The text of the first pages, as long as their drawing commands fit the budget: a page
    is measured (decoding is fast) before it is parsed (slow), so a small file that inflates
    to megabytes of commands cannot keep indexing busy for minutes."""
    pages: list[str] = []
    budget = MAX_PDF_CONTENT_BYTES
    for page in reader.pages[:MAX_PDF_PAGES]:
        contents = page.get_contents()
        budget -= len(contents.get_data()) if contents is not None else 0
        if budget < 0:
            if any(text.strip() for text in pages):
                break  # the pages read so far are the document's text
            raise ExtractionError(
                f"PDF too large to read (over {MAX_PDF_CONTENT_BYTES // 1_000_000} MB of page "
                "content)"
            )
        pages.append(page.extract_text() or "")
    return pages


def _pdf_metadata(reader: PdfReader) -> tuple[str, str | None, str | None]:
    """(title, date, language) from the document info and catalog; blanks where damaged."""
    title, published, language = "", None, None
    try:
        info = reader.metadata
        if info is not None:
            title = str(info.title or "").strip()
            published = _pdf_date(info.get("/CreationDate"))
        language = _language_code(str(reader.trailer["/Root"].get("/Lang") or ""))
    except Exception:  # metadata is a nicety; the text is what matters
        pass
    return title, published, language


def _extract_markdown(text: str, fallback_title: str) -> ExtractedDocument:
    text = _normalise(text)
    heading = re.search(r"^#[ \t]+(.+?)[ \t#]*$", text, flags=re.MULTILINE)
    return ExtractedDocument(heading.group(1).strip() if heading else fallback_title, text)


def _sniff_kind(data: bytes) -> DocumentKind:
    head = data[:_SNIFF_BYTES].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html")) or b"<body" in head:
        return "html"
    return "text"


def _looks_binary(data: bytes) -> bool:
    """NUL bytes never occur in text encodings we read (UTF-16 pages are vanishingly rare)."""
    return b"\x00" in data[:_SNIFF_BYTES]


def _charset_of(content_type: str | None) -> str | None:
    match = re.search(r"charset=[\"']?([\w.:-]+)", content_type or "", flags=re.IGNORECASE)
    return _known_codec(match.group(1)) if match else None


def _meta_charset(head: bytes) -> str | None:
    match = re.search(rb"<meta[^>]+charset=[\"']?([\w.:-]+)", head, flags=re.IGNORECASE)
    return _known_codec(match.group(1).decode("ascii")) if match else None


def _known_codec(name: str) -> str | None:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _html_title(html: str) -> str:
    match = re.search(r"<title[^>]*>(.*?)</title>", html, flags=re.IGNORECASE | re.DOTALL)
    return " ".join(match.group(1).split()) if match else ""


def _html_language(html: str) -> str | None:
    head = html[:_SNIFF_BYTES]
    match = re.search(r"<html\b[^>]*?\blang=[\"']?([A-Za-z]{2,3}(?:[-_][\w-]+)?)", head, re.I)
    if match is None:
        match = re.search(
            r"<meta[^>]+http-equiv=[\"']?content-language[\"']?[^>]+content=[\"']?([\w-]+)",
            head,
            re.I,
        )
    return match.group(1) if match else None


def _language_code(tag: str | None) -> str | None:
    """`en-GB` → `en`; None for anything that is not a language tag."""
    match = re.fullmatch(r"([A-Za-z]{2,3})(?:[-_].*)?", (tag or "").strip())
    return match.group(1).lower() if match else None


def _iso_date(value: object) -> str | None:
    match = re.match(r"\d{4}-\d{2}-\d{2}", str(value or ""))
    return match.group(0) if match else None


def _pdf_date(value: object) -> str | None:
    """PDF dates look like `D:20240305101500Z`."""
    match = re.match(r"(?:D:)?(\d{4})(\d{2})(\d{2})", str(value or ""))
    return "-".join(match.groups()) if match else None


def _first_line_title(text: str) -> str:
    first = text.strip().split("\n", 1)[0].strip() if text.strip() else ""
    return first if 0 < len(first) <= 120 else ""


def _title_from_name(name: str) -> str:
    """`/docs/block_diffusion-notes.pdf` → `block diffusion notes`; a bare host for `https://x.org/`."""
    parts = urlsplit(name) if "://" in name else None
    path = unquote(parts.path) if parts else name
    stem = PurePosixPath(path.replace("\\", "/").rstrip("/")).stem
    if not stem and parts:
        return parts.netloc
    return " ".join(re.split(r"[_\-\s]+", stem)).strip()


def _suffix(name: str) -> str:
    path = urlsplit(name).path if "://" in name else name
    return PurePosixPath(path.replace("\\", "/")).suffix.lower()


def _normalise(text: str) -> str:
    """Unify newlines and drop trailing spaces so offsets and word counts are stable."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()
