"""`ttdr index`: the local document index (add, search, list, remove), and its named
collections (`--collection NAME`), which `ttdr research --collection NAME` searches alone."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ttdr.cli.console import JsonOption, err, fail, guarded, print_json, print_rows
from ttdr.config import Settings
from ttdr.models import check_collection_name
from ttdr.terminal import printable, shown

index_app = typer.Typer(help="The local document index.", no_args_is_help=True)
CollectionOption = Annotated[
    str | None,
    typer.Option(help="A named collection of documents (letters, digits, . _ -), e.g. tides."),
]


def _index():
    from ttdr.api import open_index

    return open_index(Settings())


def _collection(name: str | None) -> str | None:
    """`name` when it can name a collection, else exit 2 saying what can."""
    if name is None:
        return None
    try:
        return check_collection_name(name)
    except ValueError as exc:
        raise fail(f"--collection {exc}", 2) from None


@index_app.command("add")
def index_add(
    paths: Annotated[
        list[Path],
        typer.Argument(help="Files or folders (.md .txt .html .pdf .docx .pptx .xlsx .epub .csv)."),
    ],
    collection: CollectionOption = None,
) -> None:
    """Add documents to the local index, and to a collection with --collection (unchanged
    files are not read again)."""
    name = _collection(collection)

    def add() -> None:
        index = _index()
        for path in paths:
            report = index.add(path, collection=name)
            err.print(
                f"{shown(str(path))}: {report.added} added, {report.updated} updated, "
                f"{report.unchanged} unchanged, {len(report.skipped)} skipped"
            )
            for skipped in report.skipped:
                err.print(f"  [yellow]skipped[/] {shown(skipped.url)}: {shown(skipped.reason)}")
        if name is not None:
            err.print(f"Collection {name}: {index.count(collection=name)} document(s)")

    guarded(add)


@index_app.command("search")
def index_search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many passages.")] = 5,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the passages (whole) as JSON.")
    ] = False,
    collection: CollectionOption = None,
) -> None:
    """Search the local index (or one collection) and print the best passages."""
    name = _collection(collection)

    def search() -> None:
        index = _index()
        if index.count() == 0:
            raise fail("The local index is empty: add documents with `ttdr index add PATH`.", 1)
        if name is not None and index.count(collection=name) == 0:
            raise fail(f"No collection {name!r}: `ttdr index list --collections` lists them.", 1)
        passages = index.search(query, k, collection=name)
        if as_json:
            print_json([dataclasses.asdict(passage) for passage in passages])
            return
        if not passages:
            err.print("No matching passages.")
        out = Console()
        for rank, passage in enumerate(passages, start=1):
            if out.is_terminal:
                out.print(f"[bold]{rank}. {shown(passage.title)}[/] ({passage.score:.2f})")
                out.print(f"   [dim]{shown(passage.url)}[/]")
                out.print(f"   {shown(passage.text[:300])}", highlight=False)
            else:  # piped: plain lines, not wrapped at 80 columns
                title, url = (" ".join(printable(s).split()) for s in (passage.title, passage.url))
                text = " ".join(printable(passage.text[:300]).split())
                sys.stdout.write(f"{rank}. {title} ({passage.score:.2f})\n   {url}\n   {text}\n")

    guarded(search)


@index_app.command("list")
def index_list(
    as_json: JsonOption = False,
    collection: Annotated[
        str | None, typer.Option(help="Only the documents of this collection.")
    ] = None,
    collections: Annotated[
        bool, typer.Option("--collections", help="List the collections instead of documents.")
    ] = False,
) -> None:
    """List indexed documents with their collections (or, with --collections, the collections)."""
    name = _collection(collection)

    def listing() -> None:
        index = _index()
        if collections:
            named = index.collections()
            if as_json:
                print_json([dataclasses.asdict(c) for c in named])
            elif not named:
                err.print("No collections yet: ttdr index add PATH --collection NAME")
            else:
                print_rows(
                    ("collection", "documents", "passages"),
                    ((c.name, c.documents, c.passages) for c in named),
                )
            return
        documents = index.documents(collection=name)
        if as_json:
            print_json([dataclasses.asdict(doc) for doc in documents])
            return
        if not documents:
            if name is not None:
                err.print(f"No collection {name!r}: ttdr index add PATH --collection {name}")
            else:
                err.print("The local index is empty: add documents with `ttdr index add PATH`.")
            return
        print_rows(
            ("path", "title", "chars", "passages", "collections"),
            (
                (doc.path, doc.title, doc.chars, doc.passages, ", ".join(doc.collections))
                for doc in documents
            ),
        )
        if name is None and (named := index.collections()):
            summary = ", ".join(f"{c.name} ({c.documents})" for c in named)
            err.print(f"Collections: {shown(summary)}. Search one: ttdr research --collection NAME")

    guarded(listing)


@index_app.command("remove")
def index_remove(
    path: Annotated[Path, typer.Argument(help="A file or folder to forget.")],
    collection: Annotated[
        str | None,
        typer.Option(help="Only take the documents out of this collection; they stay indexed."),
    ] = None,
) -> None:
    """Remove documents from the local index (or only from a collection)."""
    name = _collection(collection)

    def remove() -> None:
        removed = _index().remove(path, collection=name)
        where = f" from collection {name}" if name is not None else ""
        err.print(f"Removed {removed} document(s){where}")

    guarded(remove)
