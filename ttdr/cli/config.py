"""`ttdr config show|init`: the settings in force and where each came from, and a commented
config file to start from.

Precedence, lowest first: built-in defaults < the user's config file < ./ttdr.toml < `TTDR_*`
environment variables < command-line flags (see ttdr/config.py).
"""

from __future__ import annotations

import json
import types
import typing
from pathlib import Path
from typing import Annotated

import typer

from ttdr.cli.console import JsonOption, err, fail, guarded, print_json, print_rows
from ttdr.cli.output import write_output
from ttdr.config import (
    PROJECT_CONFIG,
    Settings,
    config_files,
    env_var,
    setting_origins,
    user_config_file,
)
from ttdr.errors import OutputPathError
from ttdr.terminal import shown

config_app = typer.Typer(
    help="Settings: config files, TTDR_* variables, defaults.", no_args_is_help=True
)


@config_app.command("show")
def config_show(as_json: JsonOption = False) -> None:
    """The settings in force, each with where it came from: a config file, its TTDR_* variable
    or the default (flags apply per command, on top of these)."""

    def show() -> None:
        values = Settings().model_dump(mode="json")
        origins = setting_origins()
        if as_json:
            print_json({name: {"value": values[name], "source": origins[name]} for name in values})
            return
        print_rows(
            ("setting", "value", "source"),
            ((name, shown_value(value), origins[name]) for name, value in values.items()),
        )
        read = config_files()
        if read:
            err.print("Config files read (later wins): " + ", ".join(shown(str(p)) for p in read))
        else:
            err.print(
                f"No config file (looked for {shown(str(user_config_file()))} and ./"
                f"{PROJECT_CONFIG}): `ttdr config init` writes one."
            )

    guarded(show)


@config_app.command("init")
def config_init(
    path: Annotated[
        Path | None,
        typer.Option(
            help=f"Where to write it [default: {user_config_file()}; ./{PROJECT_CONFIG} is read "
            "too, and wins]."
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a config file listing every setting, commented out at its default."""
    target = path or user_config_file()
    if target.is_dir():
        raise fail(f"{target} is a folder: give a file name, e.g. {target / PROJECT_CONFIG}", 2)
    if target.exists() and not force:
        raise fail(f"{target} already exists: edit it, or pass --force to overwrite it", 2)

    def write() -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputPathError(
                f"cannot create the folder {target.parent}: {exc.strerror or exc}"
            ) from None
        write_output(target, commented_config())
        err.print(f"Wrote {shown(str(target))}; uncomment what you want to change.")

    guarded(write)


def commented_config() -> str:
    """Every setting as a commented-out `key = default` line under its description, so the
    file documents itself and uncommenting a line is all it takes to change a setting."""
    lines = [
        "# ttdr settings: uncomment a line to change it.",
        f"# Read from {user_config_file()} and ./{PROJECT_CONFIG} (which wins);",
        "# TTDR_* environment variables win over both, and command-line flags over those.",
        "# `ttdr config show` prints the settings in force and where each came from.",
    ]
    for name, field in Settings.model_fields.items():
        lines.append("")
        about = field.description or ""
        kind = _without_none(field.annotation)
        if typing.get_origin(kind) is typing.Literal:
            about += f" One of: {', '.join(map(str, typing.get_args(kind)))}."
        lines.append(f"# {about.strip()} ({env_var(name)})")
        default = field.get_default(call_default_factory=True)
        if default is None:
            lines.append(f"# {name} = ...  (unset by default)")
        else:
            lines.append(f"# {name} = {toml_value(default)}")
    return "\n".join(lines) + "\n"


def _without_none(annotation: object) -> object:
    """`T` of `T | None`; anything else as it is."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def toml_value(value: object) -> str:
    """A default written as TOML: JSON's string escapes are valid in TOML's basic strings."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def shown_value(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
