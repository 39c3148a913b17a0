"""`ttdr research --review-plan`: the conversation about a plan that waits for review.

The plan is shown on stderr (stdout is the report's) and the answer read from stdin, so the
review also works with piped input; with no input left (a script, `< /dev/null`) the run is
left waiting, which costs nothing: `--resume` brings the review back, in this or a later shell.
An edit goes through `$VISUAL`/`$EDITOR` when one is set (click's editor launcher), else by
line prompts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

import click

from ttdr.cli.console import err
from ttdr.models import Plan, PlanSection
from ttdr.terminal import shown

EDITOR_HELP = (
    "# Edit the plan of: {question}\n"
    "# One section per '## Title' line; its key question on the lines below it.\n"
    "# Lines starting with a single '#' are ignored. Delete every section to reject the plan.\n"
)
CHOICES = {"a": "accept", "e": "edit", "r": "reject", "l": "later"}


@dataclass(frozen=True)
class Review:
    """What the person decided; `plan` is the plan to go on with (edited or not)."""

    decision: Literal["accept", "edit", "reject", "later"]
    plan: Plan | None = None


def review_plan(question: str, plan: Plan) -> Review:
    """Show the plan and ask until the person accepts, rejects or postpones it."""
    while True:
        show_plan(plan)
        try:
            answer = click.prompt(
                "[a]ccept, [e]dit, [r]eject, or decide [l]ater",
                default="a",
                err=True,
                show_default=True,
            )
        except click.Abort:  # no input left: not a decision, so the run keeps waiting
            err.print()
            return Review("later")
        decision = CHOICES.get(answer.strip().lower()[:1])
        if decision is None:
            err.print(f"[yellow]Answer a, e, r or l, not {shown(answer)!r}.[/]")
        elif decision == "edit":
            edited = edit_plan(question, plan)
            if edited is None:
                return Review("reject")
            if edited != plan:
                return Review("edit", edited)
            err.print("The plan is unchanged.")
        elif decision == "accept":
            return Review("accept", plan)
        else:
            return Review(decision)


def show_plan(plan: Plan) -> None:
    err.print("[bold]The plan:[/]")
    for number, section in enumerate(plan.sections, 1):
        err.print(f"  {number}. [bold]{shown(section.title)}[/]: {shown(section.question)}")


def edit_plan(question: str, plan: Plan) -> Plan | None:
    """The edited plan, the same plan when nothing usable was typed, or None when every
    section was deleted (that is a rejection)."""
    if os.environ.get("VISUAL") or os.environ.get("EDITOR"):
        text = click.edit(EDITOR_HELP.format(question=question) + plan_text(plan), extension=".md")
        if text is None:  # the editor was closed without saving
            return plan
        sections = parse_plan_text(text)
        return Plan(sections=sections) if sections else None
    return prompt_sections(plan)


def prompt_sections(plan: Plan) -> Plan:
    err.print(
        "Type the sections, one per line as 'Title: key question'; an empty line ends "
        "(none typed: the plan stays as it is)."
    )
    sections = []
    while True:
        try:
            line = click.prompt("", default="", show_default=False, err=True, prompt_suffix="> ")
        except click.Abort:
            break
        if not line.strip():
            break
        title, _, key_question = line.partition(":")
        if title.strip():
            sections.append(section(title, key_question))
    return Plan(sections=sections) if sections else plan


def plan_text(plan: Plan) -> str:
    return "".join(f"\n## {s.title}\n{s.question}\n" for s in plan.sections)


def parse_plan_text(text: str) -> list[PlanSection]:
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("## "):
            sections.append((line[3:], []))
        elif line.startswith("#") or not sections:
            continue
        else:
            sections[-1][1].append(line)
    return [section(title, " ".join(lines)) for title, lines in sections if title.strip()]


def section(title: str, key_question: str) -> PlanSection:
    """A section as typed; with no key question the title stands for it."""
    title = " ".join(title.split())
    return PlanSection(title=title, question=" ".join(key_question.split()) or title)
