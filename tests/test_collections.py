"""Document collections in the local index: two collections isolate searches and research runs,
a document may be filed in several, re-indexing keeps its collections, and an index written
before collections existed opens and works as it did; files uploaded in the app become the
run's own collection."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backends.search import LocalIndex
from tests.conftest import CORPUS
from tests.test_search_embeddings import ConceptEmbedder
from tests.ui_fixtures import ui_env
from ttdr.api import Researcher
from ttdr.cli import app
from ttdr.config import Settings
from ttdr.errors import RetrievalUnavailableError
from ttdr.models import ResearchConfig

__all__ = ["ui_env"]  # the fixture, imported for pytest

TIDES = "# Tides\n\nThe moon's pull raises the sea twice a day; spring tides follow full moon.\n"
BREAD = "# Bread\n\nSourdough bread rises slowly; the sea salt in the loaf sharpens its taste.\n"
# Both answer "sea": only the collection decides which one a search may see.


@pytest.fixture
def shelves(tmp_path: Path) -> tuple[Path, Path]:
    coast, kitchen = tmp_path / "coast", tmp_path / "kitchen"
    coast.mkdir()
    kitchen.mkdir()
    (coast / "tides.md").write_text(TIDES)
    (kitchen / "bread.md").write_text(BREAD)
    return coast, kitchen


def names(passages) -> set[str]:
    return {Path(p.url).name for p in passages}


@pytest.mark.parametrize("embedder", [None, ConceptEmbedder()], ids=["bm25", "hybrid"])
def test_two_collections_see_only_their_own_documents(
    shelves: tuple[Path, Path], tmp_path: Path, embedder
) -> None:
    coast, kitchen = shelves
    index = LocalIndex(tmp_path / "ttdr.db", embedder=embedder)
    assert index.add(coast, collection="coast").added == 1
    assert index.add(kitchen, collection="kitchen").added == 1
    assert names(index.search("sea", k=5)) == {"tides.md", "bread.md"}
    assert names(index.search("sea", k=5, collection="coast")) == {"tides.md"}
    assert names(index.search("sea", k=5, collection="kitchen")) == {"bread.md"}
    assert index.search("sea", k=5, collection="nowhere") == []
    assert [(c.name, c.documents) for c in index.collections()] == [("coast", 1), ("kitchen", 1)]
    assert index.count(collection="coast") == 1 and index.count() == 2


def test_a_document_in_two_collections_keeps_both_when_it_changes(
    shelves: tuple[Path, Path], tmp_path: Path
) -> None:
    coast, _ = shelves
    index = LocalIndex(tmp_path / "ttdr.db")
    index.add(coast, collection="coast")
    again = index.add(coast / "tides.md", collection="moon")
    assert (again.added, again.unchanged) == (0, 1)  # filed, not read again
    (coast / "tides.md").write_text(TIDES + "\nNeap tides come at the half moon.\n")
    assert index.add(coast).updated == 1  # re-indexed without naming a collection
    (document,) = index.documents()
    assert document.collections == ("coast", "moon")
    assert names(index.search("neap", k=3, collection="moon")) == {"tides.md"}
    assert index.remove(coast, collection="moon") == 1  # out of the collection, still indexed
    assert index.documents()[0].collections == ("coast",) and index.count() == 1
    assert index.remove(coast) == 1
    assert index.collections() == []  # no membership outlives its document


def test_an_index_made_before_collections_opens_and_gains_them(
    shelves: tuple[Path, Path], tmp_path: Path
) -> None:
    coast, kitchen = shelves
    db_path = tmp_path / "ttdr.db"
    LocalIndex(db_path).add(coast)
    with sqlite3.connect(db_path) as db:  # back to the schema of the last release
        db.execute("DROP TABLE index_collections")
        db.execute("DELETE FROM index_meta WHERE key = 'schema'")
    index = LocalIndex(db_path)
    assert names(index.search("sea", k=3)) == {"tides.md"}
    assert index.documents()[0].collections == () and index.collections() == []
    assert index.add(coast).unchanged == 1  # nothing is re-read by the migration
    index.add(kitchen, collection="kitchen")
    assert names(index.search("sea", k=3, collection="kitchen")) == {"bread.md"}
    with sqlite3.connect(db_path) as db:
        (version,) = db.execute("SELECT value FROM index_meta WHERE key = 'schema'").fetchone()
    assert version == "2"


@pytest.mark.parametrize("name", ["../etc", "", "a b", "-x", "x" * 65])
def test_a_name_that_cannot_be_a_collection_is_refused_before_indexing(
    shelves: tuple[Path, Path], tmp_path: Path, name: str
) -> None:
    index = LocalIndex(tmp_path / "ttdr.db")
    with pytest.raises(ValueError, match="cannot name a collection"):
        index.add(shelves[0], collection=name)
    assert index.count() == 0


def test_research_runs_in_two_collections_cite_only_their_own(
    shelves: tuple[Path, Path], home: Path, tiny_model: Path
) -> None:
    coast, kitchen = shelves
    settings = Settings()
    index = LocalIndex(settings.db_path)
    index.add(coast, collection="coast")
    index.add(kitchen, collection="kitchen")
    cited: dict[str, set[str]] = {}
    for collection in ("coast", "kitchen"):
        config = ResearchConfig(
            model=str(tiny_model), collection=collection, iterations=1, max_sections=2,
            section_tokens=8, variants=1, evolution_rounds=0, evolve=[],
        )  # fmt: skip
        researcher = Researcher(config, settings=settings)
        events = list(researcher.stream("What does the sea do?"))  # search "auto": local then
        assert f"Searching only the collection {collection!r}" in [e.message for e in events]
        run = researcher.get_run(events[-1].run_id)
        assert run.config.collection == collection
        cited[collection] = {Path(s.url).name for s in run.sources_list}
    assert cited == {"coast": {"tides.md"}, "kitchen": {"bread.md"}}


def test_a_run_given_docs_and_a_collection_files_them_there(
    shelves: tuple[Path, Path], home: Path, tiny_model: Path
) -> None:
    coast, kitchen = shelves
    settings = Settings()
    LocalIndex(settings.db_path).add(kitchen, collection="kitchen")
    config = ResearchConfig(
        model=str(tiny_model), docs=[coast], collection="coast", iterations=0, max_sections=1,
        section_tokens=8, variants=1, evolution_rounds=0, evolve=[],
    )  # fmt: skip
    Researcher(config, settings=settings).run("What does the sea do?")
    assert [d.name for d in LocalIndex(settings.db_path).collections()] == ["coast", "kitchen"]
    empty = ResearchConfig(model=str(tiny_model), collection="attic", search="local")
    with pytest.raises(RetrievalUnavailableError, match="The collection 'attic' has no documents"):
        Researcher(empty, settings=settings).run("What does the sea do?")


def test_the_index_commands_add_list_and_search_collections(
    shelves: tuple[Path, Path], home: Path
) -> None:
    coast, kitchen = shelves
    cli = CliRunner()

    def ttdr(*args: object):
        return cli.invoke(app, [str(a) for a in args])

    added = ttdr("index", "add", coast, "--collection", "coast")
    assert added.exit_code == 0 and "Collection coast: 1 document(s)" in added.stderr
    assert ttdr("index", "add", kitchen, "--collection", "kitchen").exit_code == 0
    listed = ttdr("index", "list")
    assert "coast" in listed.stdout and "Collections: coast (1), kitchen (1)" in listed.stderr
    collections = ttdr("index", "list", "--collections")
    assert collections.stdout.splitlines() == [
        "collection\tdocuments\tpassages", "coast\t1\t1", "kitchen\t1\t1"
    ]  # fmt: skip
    only = ttdr("index", "search", "sea", "--collection", "kitchen", "--json")
    assert "bread.md" in only.stdout and "tides.md" not in only.stdout
    bad = ttdr("index", "add", coast, "--collection", "no/slashes")
    assert bad.exit_code == 2 and "cannot name a collection" in bad.stderr
    research = ttdr("research", "q", "--collection", "white space")
    assert research.exit_code == 2 and "cannot name a collection" in research.stderr


# -- the app's uploader ------------------------------------------------------------------------


def test_upload_types_are_what_the_index_reads() -> None:
    from backends.search.extract import SUPPORTED_SUFFIXES
    from ui.uploads import UPLOAD_TYPES, safe_name

    assert {f".{t}" for t in UPLOAD_TYPES} == set(SUPPORTED_SUFFIXES)
    assert safe_name("../../etc/passwd") == "passwd" and safe_name("C:\\x\\notes.md") == "notes.md"
    assert safe_name("...") == "upload" and safe_name("a;b<c>.pdf") == "a_b_c_.pdf"


def test_files_uploaded_in_the_app_are_a_collection_the_run_searches_alone(
    ui_env: Path, tmp_path: Path
) -> None:
    from tests.test_office_documents import write_docx
    from tests.ui_fixtures import QUESTION, open_app, run_param
    from ui import worker

    settings = Settings()
    LocalIndex(settings.db_path).add(CORPUS)  # indexed before: the run must not answer from it
    word = write_docx(tmp_path / "survey.docx").read_bytes()
    at = open_app()
    assert at.file_uploader(key="uploads").accept_multiple_files
    at.text_area(key="question").input(QUESTION)
    at.radio(key="search").set_value("auto")
    at.number_input(key="iterations").set_value(1)
    at.multiselect(key="evolve").set_value([])
    at.file_uploader(key="uploads").set_value(
        [
            ("moon notes.md", TIDES.encode(), "text/markdown"),
            ("survey.docx", word, "application/octet-stream"),
        ]
    )
    at.button(key="start").click().run()
    assert not at.exception, at.exception
    run_id = run_param(at)
    assert worker.wait_for(run_id, 120)
    run = Researcher(settings=settings).get_run(run_id)
    collection = run.config.collection
    assert collection is not None and collection.startswith("upload-")
    folder = settings.home / "uploads" / collection
    assert sorted(p.name for p in folder.iterdir()) == ["moon notes.md", "survey.docx"]
    filed = LocalIndex(settings.db_path).documents(collection=collection)
    assert sorted(d.path.name for d in filed) == ["moon notes.md", "survey.docx"]
    assert run.sources_list and all(Path(s.url).parent.name == collection for s in run.sources_list)
