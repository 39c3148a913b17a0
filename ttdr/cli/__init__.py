"""The `ttdr` command line: one module per command group, wired here.

    research.py  ttdr research          history.py  ttdr history ...
    index.py     ttdr index ...         models.py   ttdr models ...
    prompts.py   ttdr prompts ...       eval.py     ttdr eval
    bench.py     ttdr bench ...         train.py    ttdr train a2d ...
    ui.py        ttdr ui                serve.py    ttdr serve
    config.py    ttdr config show|init

Commands reach the agent, the engine and the store only through `ttdr.api`, and import it
when they run, so `ttdr --help` starts without loading them.
Exit codes: 0 success, 1 a run or command failed, 2 bad input, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from pydantic import ValidationError

from ttdr import __version__
from ttdr.cli.bench import bench_app
from ttdr.cli.config import config_app
from ttdr.cli.console import fail
from ttdr.cli.eval import eval_command
from ttdr.cli.history import history_app
from ttdr.cli.index import index_app
from ttdr.cli.models import models_app
from ttdr.cli.prompts import prompts_app
from ttdr.cli.research import research
from ttdr.cli.serve import serve
from ttdr.cli.train import train_app
from ttdr.cli.ui import ui
from ttdr.config import ConfigFileError, setting_origins
from ttdr.errors import TtdrError

__all__ = ["app", "main"]

app = typer.Typer(
    help="ttdr: deep research by test-time diffusion, on a local diffusion language model.",
    no_args_is_help=True,
    add_completion=True,  # --install-completion / --show-completion (bash, zsh, fish)
    pretty_exceptions_enable=False,
)
app.command()(research)
app.add_typer(history_app, name="history")
app.add_typer(index_app, name="index")
app.add_typer(models_app, name="models")
app.add_typer(prompts_app, name="prompts")
app.command("eval")(eval_command)
app.command()(ui)
app.command()(serve)
app.add_typer(bench_app, name="bench")
app.add_typer(train_app, name="train")
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ttdr {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """ttdr writes cited research reports: plan, draft, then denoise the draft with search."""


INTERRUPTED = 130


def setting_error(exc: ValidationError) -> str:
    """`TTDR_SEARCH='gopher': Input should be 'web', 'local' or 'auto'`, or `/x/ttdr.toml:
    search = 'gopher': ...` for a value from a config file, for each bad field: settings and a
    run's config share their field names with the TTDR_* variables and the files' keys."""
    try:
        origins = setting_origins()
    except ConfigFileError:
        origins = {}
    problems, in_file = [], False
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "?"
        origin = origins.get(field, "default")
        if origin.startswith("TTDR_") or origin == "default":
            problems.append(f"TTDR_{field.upper()}={error.get('input')!r}: {error['msg']}")
        else:
            in_file = True
            problems.append(f"{origin}: {field} = {error.get('input')!r}: {error['msg']}")
    fix = "fix the file" if in_file else "fix or unset the variable"
    return "; ".join(problems) + f" ({fix}, or pass the option on the command line)"


def main() -> None:
    try:
        app()
    except ConfigFileError as exc:  # a config file that is not TOML or names no setting
        raise SystemExit(fail(str(exc), 2).exit_code) from None
    except TtdrError as exc:  # one no command caught, e.g. an unusable history database
        raise SystemExit(fail(str(exc), 1).exit_code) from None
    except ValidationError as exc:  # a TTDR_* value (or a setting derived from it) is invalid
        raise SystemExit(fail(setting_error(exc), 2).exit_code) from None
    except SystemExit as done:
        if done.code == INTERRUPTED:
            # A stopped run has committed everything (its status, drafts, checkpoints) by now;
            # the interpreter's own teardown with torch loaded takes seconds more, and worker
            # threads may still be finishing a forward pass whose result nobody wants.
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(INTERRUPTED)
        raise
