"""`ttdr models`: the presets, their decoding and cache state, and one model's facts."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ttdr.cli.console import err, guarded, print_table
from ttdr.config import Settings
from ttdr.terminal import shown

models_app = typer.Typer(help="Models ttdr can use.", invoke_without_command=True)


@models_app.callback()
def models_default(ctx: typer.Context) -> None:
    """List the models (same as `ttdr models list`); `ttdr models info NAME` for one."""
    if ctx.invoked_subcommand is None:
        models_list()


@models_app.command("list")
def models_list() -> None:
    """Model presets, their family and decoding, and whether they are in the cache."""
    from ttdr.api import list_models

    table = Table("name", "family", "decoding", "in cache", "location")
    for entry in list_models(Settings().model_cache):
        if entry.present:
            where = "yes"
        elif entry.fetched_on_first_use:
            where = "no (fetched on first use)"
        else:
            where = "no (place the checkpoint folder there)"
        name = entry.name + (" (default)" if entry.default else "")
        table.add_row(name, entry.family, entry.decoding, where, shown(str(entry.folder)))
    print_table(table)
    err.print("Any local checkpoint folder of these families also works: --model PATH")


@models_app.command("info")
def models_info(
    name: Annotated[str, typer.Argument(help="A preset, a family name or a checkpoint folder.")],
) -> None:
    """A model's family and decode defaults: attention, mask id, block size, logit shift."""
    from ttdr.api import model_info

    def info() -> None:
        table = Table("field", "value")
        for key, value in model_info(name, Settings().model_cache).items():
            table.add_row(key, shown(value))
        print_table(table)

    guarded(info)
