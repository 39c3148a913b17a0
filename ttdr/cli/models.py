"""`ttdr models`: the presets, their decoding and cache state, and one model's facts."""

from __future__ import annotations

import dataclasses
from typing import Annotated

import typer

from ttdr.cli.console import JsonOption, err, fail, guarded, print_json, print_rows
from ttdr.config import Settings
from ttdr.errors import ModelUnavailableError

models_app = typer.Typer(help="Models ttdr can use.", invoke_without_command=True)


@models_app.callback()
def models_default(ctx: typer.Context, as_json: JsonOption = False) -> None:
    """List the models (same as `ttdr models list`); `ttdr models info NAME` for one."""
    if ctx.invoked_subcommand is None:
        models_list(as_json)


@models_app.command("list")
def models_list(as_json: JsonOption = False) -> None:
    """Model presets, their family and decoding, and whether they are in the cache."""
    from ttdr.api import list_models

    entries = list_models(Settings().model_cache)
    if as_json:
        print_json([dataclasses.asdict(entry) for entry in entries])
        return
    rows = []
    for entry in entries:
        if entry.present:
            where = "yes"
        elif entry.fetched_on_first_use:
            where = "no (fetched on first use)"
        else:
            where = "no (place the checkpoint folder there)"
        name = entry.name + (" (default)" if entry.default else "")
        rows.append((name, entry.family, entry.decoding, where, entry.folder))
    print_rows(("name", "family", "decoding", "in cache", "location"), rows)
    err.print("Any local checkpoint folder of these families also works: --model PATH")


@models_app.command("info")
def models_info(
    name: Annotated[str, typer.Argument(help="A preset, a family name or a checkpoint folder.")],
    as_json: JsonOption = False,
) -> None:
    """A model's family and decode defaults: attention, mask id, block size, logit shift."""
    from ttdr.api import model_info

    def info() -> None:
        try:
            facts = model_info(name, Settings().model_cache)
        except ModelUnavailableError as exc:  # the name given names no model: bad input
            raise fail(str(exc), 2) from None
        if as_json:
            print_json(facts)
        else:
            print_rows(("field", "value"), facts.items())

    guarded(info)
