"""Office documents, e-books and spreadsheets as Markdown, through Microsoft's markitdown.

markitdown's own converters are called directly, chosen by the file's suffix: its front door
would first guess the type with magika's model, which the suffix makes unnecessary (and which
costs a model load per process). Word headings stay headings, so passages keep their section
titles; slides become one heading each; every sheet of a workbook and a CSV become Markdown
tables, which BM25 reads cell by cell.

An Office file or EPUB is a zip archive: its members' declared sizes are summed before anything
is inflated, so a small file that would unpack to gigabytes is refused, never read.
"""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

# What each suffix is, in the words a user sees in "skipped: unreadable DOCX (...)".
OFFICE_SUFFIXES = {
    ".docx": "DOCX",
    ".pptx": "PPTX",
    ".xlsx": "XLSX",
    ".epub": "EPUB",
    ".csv": "CSV",
}
MAX_UNPACKED_BYTES = 200_000_000
_SLIDE_COMMENT = re.compile(r"<!--\s*Slide number:\s*(\d+)\s*-->")
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


class OfficeReadError(Exception):
    """The document could not be converted; the message is short and user-facing."""


def office_to_markdown(data: bytes, suffix: str) -> tuple[str, str | None]:
    """(markdown, title or None) of an Office document, EPUB or CSV; raises `OfficeReadError`."""
    label = OFFICE_SUFFIXES[suffix]
    if suffix != ".csv":
        _check_archive(data, label)
    try:
        from markitdown import StreamInfo
    except ImportError as error:  # pragma: no cover - a dependency; a broken install
        raise OfficeReadError(
            f"reading {label} needs markitdown: pip install 'markitdown[docx,pptx,xlsx]'"
        ) from error
    converter = _converter(suffix)
    try:
        result = converter.convert(io.BytesIO(data), StreamInfo(extension=suffix))
    except Exception as error:  # converters raise whatever their parser raises
        raise OfficeReadError(f"unreadable {label} ({type(error).__name__})") from error
    markdown = _SLIDE_COMMENT.sub(lambda m: f"Slide {m.group(1)}", result.markdown or "")
    return _COMMENT.sub("", markdown), (result.title or "").strip() or None


def _check_archive(data: bytes, label: str) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except zipfile.BadZipFile as error:
        raise OfficeReadError(f"unreadable {label} (not a zip archive)") from error
    if unpacked > MAX_UNPACKED_BYTES:
        raise OfficeReadError(
            f"{label} too large to read (unpacks to over {MAX_UNPACKED_BYTES // 1_000_000} MB)"
        )


def _converter(suffix: str) -> Any:
    from markitdown import converters

    return {
        ".docx": converters.DocxConverter,
        ".pptx": converters.PptxConverter,
        ".xlsx": converters.XlsxConverter,
        ".epub": converters.EpubConverter,
        ".csv": converters.CsvConverter,
    }[suffix]()
