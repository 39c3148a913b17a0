"""The local index on a real SQLite file: adding, re-adding, ranking, removing, refusing."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from backends.search import LocalIndex
from ttdr.errors import DocsPathError, IndexDatabaseError

CORPUS = Path(__file__).parent / "fixtures" / "corpus"


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    folder = tmp_path / "docs"
    shutil.copytree(CORPUS, folder)
    return folder


@pytest.fixture
def index(tmp_path: Path) -> LocalIndex:
    return LocalIndex(tmp_path / "ttdr.sqlite")


def passage_rowids(db_path: Path) -> list[int]:
    with sqlite3.connect(db_path) as db:
        return [row[0] for row in db.execute("SELECT rowid FROM index_passages ORDER BY rowid")]


def test_add_indexes_every_supported_file(index: LocalIndex, docs: Path) -> None:
    report = index.add(docs)

    assert (report.added, report.updated, report.unchanged, report.skipped) == (4, 0, 0, [])
    assert index.count() == 4
    titles = {doc.path.name: doc.title for doc in index.documents()}
    assert titles == {
        "bm25-ranking.md": "How BM25 ranks passages",
        "kv-cache.pdf": "Caching keys and values in block diffusion",
        "sourdough.txt": "sourdough",
        "tides.html": "Why the sea has tides",
    }
    assert all(doc.passages >= 1 and doc.chars > 100 for doc in index.documents())


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Why are there two high tides a day?", "tides.html"),
        ("How does a KV cache speed up block diffusion decoding?", "kv-cache.pdf"),
        ("How does BM25 penalise long passages?", "bm25-ranking.md"),
        ("how long does sourdough ferment", "sourdough.txt"),
    ],
)
def test_the_right_document_ranks_first(
    index: LocalIndex, docs: Path, question: str, expected: str
) -> None:
    index.add(docs)

    passages = index.search(question, k=4)

    assert passages[0].url == (docs / expected).as_uri()
    assert passages[0].kind == "local"
    assert passages[0].score > 0
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)


def test_readding_unchanged_files_does_not_extract_them_again(
    index: LocalIndex, docs: Path, tmp_path: Path
) -> None:
    index.add(docs)
    before = passage_rowids(tmp_path / "ttdr.sqlite")
    added_at = {doc.path: doc.added_at for doc in index.documents()}

    report = index.add(docs)

    assert (report.added, report.updated, report.unchanged) == (0, 0, 4)
    assert passage_rowids(tmp_path / "ttdr.sqlite") == before  # passages were not rewritten
    assert {doc.path: doc.added_at for doc in index.documents()} == added_at


def test_a_changed_file_is_reindexed_and_keeps_its_added_date(
    index: LocalIndex, docs: Path
) -> None:
    index.add(docs)
    first_added = {doc.path.name: doc.added_at for doc in index.documents()}
    (docs / "sourdough.txt").write_text("Rye bread needs no kneading at all.\n", encoding="utf-8")

    report = index.add(docs)

    assert (report.added, report.updated, report.unchanged) == (0, 1, 3)
    assert index.search("wild yeast starter", k=4) == []
    [hit] = index.search("rye kneading", k=4)
    assert hit.text == "Rye bread needs no kneading at all."
    assert {doc.path.name: doc.added_at for doc in index.documents()} == first_added


def test_remove_a_file_then_a_folder(index: LocalIndex, docs: Path) -> None:
    index.add(docs)

    assert index.remove(docs / "tides.html") == 1
    assert index.count() == 3
    assert all("tides" not in p.url for p in index.search("moon tides", k=8))
    assert index.remove(docs / "no-such-file.md") == 0
    assert index.remove(docs) == 3
    assert index.count() == 0
    assert index.search("bm25", k=8) == []


def test_a_missing_path_is_refused_with_what_to_do(index: LocalIndex, docs: Path) -> None:
    index.add(docs)

    with pytest.raises(DocsPathError) as caught:
        index.add(docs / "missing-folder")

    message = str(caught.value)
    assert str(docs / "missing-folder") in message
    assert "ttdr index add PATH" in message
    assert index.count() == 4  # what was indexed before is kept


def test_unreadable_and_unsupported_files_are_skipped_with_a_reason(
    index: LocalIndex, tmp_path: Path
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "notes.md").write_text("# Notes\n\nDiffusion models denoise text.\n")
    (folder / "blob.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00")
    (folder / "empty.md").write_text("   \n")
    (folder / "broken.pdf").write_bytes(b"%PDF-1.4\nthis is not really a pdf")
    (folder / "photo.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    (folder / ".hidden.md").write_text("# Hidden\n\nnot indexed\n")

    report = index.add(folder)

    reasons = {Path(s.url).name: s.reason for s in report.skipped}
    assert reasons["blob.txt"] == "binary content"
    assert reasons["empty.md"] == "empty page"
    assert reasons["broken.pdf"].startswith(("unreadable PDF", "no text in PDF"))
    assert "photo.png" not in reasons  # unsupported types inside a folder are ignored quietly
    assert report.added == 1
    assert [d.path.name for d in index.documents()] == ["notes.md"]

    explicit = index.add(folder / "photo.png")

    assert explicit.added == 0
    assert explicit.skipped[0].reason.startswith("unsupported file type .png")
    assert {s.category for s in report.skipped + explicit.skipped} == {"not_text"}


def test_at_most_two_passages_come_from_one_document(index: LocalIndex, tmp_path: Path) -> None:
    folder = tmp_path / "long"
    folder.mkdir()
    paragraph = "Diffusion models refine a noisy draft step by step. " * 20
    (folder / "long.md").write_text("# Long\n\n" + "\n\n".join([paragraph] * 6))
    (folder / "short.md").write_text("# Short\n\nA diffusion draft.\n")
    index.add(folder)

    passages = index.search("diffusion draft", k=10)

    assert [Path(p.url).name for p in passages].count("long.md") == 2
    assert "short.md" in [Path(p.url).name for p in passages]


def test_query_syntax_in_user_text_is_not_interpreted(index: LocalIndex, docs: Path) -> None:
    index.add(docs)

    for query in ['"AND" OR NEAR(', "bm25: -negative *", "???", ""]:
        assert isinstance(index.search(query, k=3), list)
    assert index.search("bm25() -negative", k=1)[0].url.endswith("bm25-ranking.md")


def test_index_owns_only_its_tables_in_a_shared_database(tmp_path: Path, docs: Path) -> None:
    db_path = tmp_path / "ttdr.sqlite"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE runs (id TEXT PRIMARY KEY)")
        db.execute("INSERT INTO runs VALUES ('run-1')")

    LocalIndex(db_path).add(docs)

    with sqlite3.connect(db_path) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        assert db.execute("SELECT id FROM runs").fetchall() == [("run-1",)]
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert {t for t in tables if not t.startswith("index_")} == {"runs"}


def test_a_file_that_is_not_an_index_is_named_with_the_fix_and_left_as_it_is(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "ttdr.db"
    db_path.write_bytes(b"these are not the pages of an SQLite database\n" * 200)
    before = db_path.read_bytes()

    with pytest.raises(IndexDatabaseError) as caught:
        LocalIndex(db_path)

    message = str(caught.value)
    assert str(db_path) in message and f"mv {db_path} {db_path}.broken" in message
    assert "damaged" in message and "\n" not in message
    assert db_path.read_bytes() == before  # never reset to make the error go away


def test_an_index_damaged_after_opening_explains_every_call(tmp_path: Path, docs: Path) -> None:
    db_path = tmp_path / "ttdr.db"
    index = LocalIndex(db_path)
    index.add(docs)
    with open(db_path, "r+b") as file:  # every page after the header page
        file.seek(4096)
        file.write(b"\xde\xad" * (db_path.stat().st_size // 2))

    calls = {
        "count": index.count,
        "documents": index.documents,
        "search": lambda: index.search("tides moon"),
        "add": lambda: index.add(docs),
        "remove": lambda: index.remove(docs),
    }
    for name, call in calls.items():
        with pytest.raises(IndexDatabaseError, match="damaged") as caught:
            call()
        assert str(db_path) in str(caught.value), name


def test_an_index_whose_folder_cannot_be_made_names_it(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")

    with pytest.raises(IndexDatabaseError, match="cannot be created") as caught:
        LocalIndex(tmp_path / "a-file" / "ttdr.db")

    assert str(tmp_path / "a-file" / "ttdr.db") in str(caught.value)


def test_a_file_over_the_size_limit_is_skipped_as_too_large(
    index: LocalIndex, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("backends.search.local_index.MAX_FILE_BYTES", 1000)
    (tmp_path / "big.txt").write_text("tides " * 200)

    (skipped,) = index.add(tmp_path / "big.txt").skipped

    assert skipped.category == "too_large" and "larger than" in skipped.reason
