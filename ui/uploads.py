"""Files uploaded in the app: kept under the data directory, filed in a collection of their own,
so the run searches them (and any documents named beside them) and nothing indexed before.

The files are written to `HOME/uploads/COLLECTION/`; the run indexes them into the collection
as it starts, exactly as it indexes `--docs`, with the same progress and skipped-file warnings.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ttdr.models import check_collection_name

# The suffixes the local index reads (backends/search/extract.py; a test keeps them equal).
UPLOAD_TYPES = (
    *("md", "markdown", "txt", "html", "htm", "pdf"),
    *("docx", "pptx", "xlsx", "epub", "csv"),
)


class Upload(Protocol):
    """What Streamlit's UploadedFile gives: a name and the bytes."""

    name: str

    def getvalue(self) -> bytes: ...


def upload_collection(files: Sequence[Upload], named: str) -> str:
    """The collection the run searches: the name the user gave, else one made from the files'
    contents (the same files give the same collection; different ones never share it)."""
    if named.strip():
        return check_collection_name(named.strip())
    digest = hashlib.sha256()
    for file in sorted(files, key=lambda f: f.name):
        digest.update(file.name.encode() + b"\0" + file.getvalue())
    return f"upload-{digest.hexdigest()[:10]}"


def save_uploads(files: Sequence[Upload], home: Path, collection: str) -> list[Path]:
    """Write the files into `HOME/uploads/COLLECTION/` under safe names; returns their paths."""
    folder = home / "uploads" / check_collection_name(collection)
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for file in files:
        path = folder / safe_name(file.name)
        path.write_bytes(file.getvalue())
        saved.append(path)
    return saved


def safe_name(name: str) -> str:
    """A browser's file name as a plain name in one folder: no path, no hidden file."""
    base = re.sub(r"[^\w.\- ]+", "_", Path(name.replace("\\", "/")).name).strip(" .")
    return base or "upload"
