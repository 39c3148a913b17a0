"""`ttdr prompts`: the evolving prompt population (list, show, reset)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ttdr.cli.console import err, fail, guarded, print_table, print_text
from ttdr.config import Settings
from ttdr.terminal import shown

prompts_app = typer.Typer(help="The evolving prompt population.", no_args_is_help=True)


@prompts_app.command("list")
def prompts_list() -> None:
    """Prompt versions per component: fitness (mean judge score), uses, parent."""
    from ttdr.api import prompt_versions

    def listing() -> None:
        versions = prompt_versions(Settings())
        if not versions:
            err.print("No prompt versions yet: the first research run seeds them.")
            return
        table = Table("id", "component", "fitness", "uses", "parent", "note")
        for v in versions:
            fitness = f"{v.fitness:.2f}" if v.fitness is not None else "—"
            parent = str(v.parent_id) if v.parent_id else ""
            table.add_row(
                str(v.id), shown(v.component), fitness, str(v.uses), parent, shown(v.note)
            )
        print_table(table)

    guarded(listing)


@prompts_app.command("show")
def prompts_show(
    component: Annotated[str, typer.Argument(help="plan, questions, answer or report.")],
) -> None:
    """Every version of one component's prompt, fittest first."""
    from ttdr.api import prompt_components, prompt_versions

    seeds = prompt_components()
    if component not in seeds:
        raise fail(f"unknown component {component!r}: use one of {', '.join(seeds)}", 2)

    def show() -> None:
        versions = prompt_versions(Settings(), component)
        if not versions:
            err.print(f"No versions of {component} yet; the seed is:")
            print_text(seeds[component] + "\n")
            return
        ranked = sorted(versions, key=lambda v: (v.fitness is None, -(v.fitness or 0), v.id))
        for v in ranked:
            fitness = f"{v.fitness:.2f}" if v.fitness is not None else "untried"
            err.print(f"[bold]#{v.id}[/] fitness {fitness}, uses {v.uses}, parent {v.parent_id}")
            print_text(v.text + "\n\n")

    guarded(show)


@prompts_app.command("reset")
def prompts_reset(
    component: Annotated[str | None, typer.Argument(help="One component, or all.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Forget evolved prompts; the next run starts again from the seeds."""
    from ttdr.api import reset_prompts

    what = component or "all components"
    if not yes and not typer.confirm(f"Delete every prompt version of {what}?"):
        raise typer.Exit(1)

    def reset() -> None:
        removed = reset_prompts(Settings(), component)
        err.print(f"Removed {removed} prompt version(s) of {shown(what)}")

    guarded(reset)
