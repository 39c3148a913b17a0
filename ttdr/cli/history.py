"""`ttdr history`: list, show, export and delete saved runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ttdr.cli.console import JsonOption, err, guarded, print_json, print_rows, print_text
from ttdr.cli.output import (
    check_output,
    choose_format,
    given,
    rendered,
    write_output,
    write_stdout,
)
from ttdr.config import Settings
from ttdr.models import RunStatus
from ttdr.terminal import printable, shown

history_app = typer.Typer(help="Saved research runs.", no_args_is_help=True)


def _researcher():
    from ttdr.api import Researcher

    return Researcher(settings=Settings())


@history_app.command("list")
def history_list(
    status: Annotated[RunStatus | None, typer.Option(help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first.")] = 30,
    as_json: JsonOption = False,
) -> None:
    """List saved runs, newest first."""
    researcher = _researcher()
    runs = researcher.history(limit=limit, status=status)
    if as_json:
        print_json([run.model_dump(mode="json") for run in runs])
        return
    if not runs:
        if status is not None and researcher.history(limit=1):
            err.print(f"No {status.value} runs. All runs: ttdr history list")
        else:
            err.print('No runs yet. Start one with: ttdr research "your question"')
        return
    print_rows(
        ("id", "status", "started (UTC)", "drafts", "sources", "question"),
        (
            (r.id, r.status.value, f"{r.created_at:%Y-%m-%d %H:%M}", r.drafts, r.sources,
             r.question[:70])
            for r in runs
        ),
    )  # fmt: skip


@history_app.command("show")
def history_show(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run as JSON (as `history export`).")
    ] = False,
) -> None:
    """Show a run: its status, drafts and report (or latest draft)."""
    from ttdr.export import report_markdown

    def show() -> None:
        run = _researcher().get_run(run_id)
        if as_json:
            print_json(run.model_dump(mode="json"))
            return
        err.print(
            f"[bold]{run.id}[/] · {run.status.value} · {run.created_at:%Y-%m-%d %H:%M} UTC · "
            f"model {shown(run.model)} · {run.drafts} drafts · {run.sources} sources"
        )
        if run.error:
            err.print(f"[red]error:[/] {shown(run.error)}")
        print_text(report_markdown(run))

    guarded(show)


@history_app.command("export")
def history_export(
    ctx: typer.Context,
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    fmt: Annotated[
        str,
        typer.Option(
            "--format", help="md, json, html, pdf or docx; unset, --out's suffix picks it."
        ),
    ] = "md",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """Export a run as Markdown, JSON, HTML, PDF or Word (a file gets the export as it is)."""

    def export() -> None:
        chosen = choose_format(given(ctx, "fmt"), out)
        if out is not None:
            check_output(out)
        data, warning = rendered(_researcher().get_run(run_id), chosen)
        if warning:
            err.print(f"[yellow]warning:[/] {shown(warning)}")
        if out is None:
            write_stdout(data)
        else:
            write_output(out, data)
            err.print(f"Exported to {shown(str(out))}")

    guarded(export)


@history_app.command("delete")
def history_delete(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a run and everything saved with it."""

    def delete() -> None:
        researcher = _researcher()  # also removes the run's checkpoints
        run = researcher.get_run(run_id)
        question = printable(" ".join(run.question[:60].split()))
        if not yes and not typer.confirm(f"Delete run {run.id} ({question})?"):
            raise typer.Exit(1)
        researcher.delete_run(run.id)
        err.print(f"Deleted run {run.id}")

    guarded(delete)
