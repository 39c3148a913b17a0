"""`ttdr index`: the local document index (add, search, list, remove)."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from ttdr.cli.console import JsonOption, err, fail, guarded, print_json, print_rows
from ttdr.config import Settings
from ttdr.terminal import printable, shown

index_app = typer.Typer(help="The local document index.", no_args_is_help=True)


def _index():
    from ttdr.api import open_index

    return open_index(Settings())


@index_app.command("add")
def index_add(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.md .txt .html .pdf).")],
) -> None:
    """Add documents to the local index (unchanged files are skipped)."""

    def add() -> None:
        index = _index()
        for path in paths:
            report = index.add(path)
            err.print(
                f"{shown(str(path))}: {report.added} added, {report.updated} updated, "
                f"{report.unchanged} unchanged, {len(report.skipped)} skipped"
            )
            for skipped in report.skipped:
                err.print(f"  [yellow]skipped[/] {shown(skipped.url)}: {shown(skipped.reason)}")

    guarded(add)


@index_app.command("search")
def index_search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many passages.")] = 5,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the passages (whole) as JSON.")
    ] = False,
) -> None:
    """Search the local index and print the best passages."""

    def search() -> None:
        index = _index()
        if index.count() == 0:
            raise fail("The local index is empty: add documents with `ttdr index add PATH`.", 1)
        passages = index.search(query, k)
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
def index_list(as_json: JsonOption = False) -> None:
    """List indexed documents."""

    def listing() -> None:
        documents = _index().documents()
        if as_json:
            print_json([dataclasses.asdict(doc) for doc in documents])
            return
        if not documents:
            err.print("The local index is empty: add documents with `ttdr index add PATH`.")
            return
        print_rows(
            ("path", "title", "chars", "passages"),
            ((doc.path, doc.title, doc.chars, doc.passages) for doc in documents),
        )

    guarded(listing)


@index_app.command("remove")
def index_remove(path: Annotated[Path, typer.Argument(help="A file or folder to forget.")]) -> None:
    """Remove documents from the local index."""

    def remove() -> None:
        removed = _index().remove(path)
        err.print(f"Removed {removed} document(s)")

    guarded(remove)
