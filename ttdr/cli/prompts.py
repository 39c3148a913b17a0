"""`ttdr prompts`: the evolving prompt population (list, show, reset)."""

from __future__ import annotations

from typing import Annotated

import typer

from ttdr.cli.console import err, fail, guarded, print_json, print_rows, print_text
from ttdr.config import Settings
from ttdr.terminal import shown

prompts_app = typer.Typer(help="The evolving prompt population.", no_args_is_help=True)


@prompts_app.command("list")
def prompts_list(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the versions (with their text) as JSON.")
    ] = False,
) -> None:
    """Prompt versions per component: fitness (mean judge score), uses, parent."""
    from ttdr.api import prompt_versions

    def listing() -> None:
        versions = prompt_versions(Settings())
        if as_json:
            fields = ("id", "component", "fitness", "uses", "parent_id", "note", "text")
            print_json([{name: getattr(v, name) for name in fields} for v in versions])
            return
        if not versions:
            err.print("No prompt versions yet: the first research run seeds them.")
            return
        rows = []
        for v in versions:
            fitness = f"{v.fitness:.2f}" if v.fitness is not None else "—"
            parent = str(v.parent_id) if v.parent_id else ""
            rows.append((v.id, v.component, fitness, v.uses, parent, v.note))
        print_rows(("id", "component", "fitness", "uses", "parent", "note"), rows)

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
