"""`ttdr eval`: research a set of questions and write a table of what each run delivered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ttdr.cli.console import err, guarded, print_text, setting_help
from ttdr.cli.output import check_output_folder, write_output
from ttdr.cli.research import ablations
from ttdr.config import Settings
from ttdr.errors import OutputWriteError
from ttdr.models import SearchMode
from ttdr.terminal import shown


def eval_command(
    questions: Annotated[Path, typer.Argument(help='JSONL: one {"question": ...} per line.')],
    out: Annotated[Path, typer.Option(help="Folder for eval.json and eval.md.")] = Path(
        "ttdr-eval"
    ),
    label: Annotated[str, typer.Option(help="A name for this run set.")] = "ttdr",
    compare_with: Annotated[
        Path | None, typer.Option("--compare", help="An earlier eval.json to judge against.")
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(
            "--iterations", "-n", min=0, help=setting_help("Denoising steps per run.", "iterations")
        ),
    ] = None,
    search: Annotated[
        SearchMode | None,
        typer.Option(
            help=setting_help(
                "web, local, auto (web, local if offline), or searxng (TTDR_SEARXNG_URL).",
                "search",
            )
        ),
    ] = None,
    docs: Annotated[
        list[Path] | None,
        typer.Option(help="Folder or file to index and search in every run; repeatable."),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help=setting_help("Model name or checkpoint folder.", "model"))
    ] = None,
    judge_model: Annotated[
        str | None,
        typer.Option(
            help=setting_help("A separate judge (self-evolution and --compare).", "judge_model")
        ),
    ] = None,
    denoise: Annotated[
        bool,
        typer.Option("--denoise/--no-denoise", help="Draft revision (off: the ablation)."),
    ] = True,
    evolve: Annotated[
        bool, typer.Option("--evolve/--no-evolve", help="Self-evolution (off: the ablation).")
    ] = True,
    retrieval_only: Annotated[
        bool,
        typer.Option(
            "--retrieval-only",
            help="No model: replay each question's search steps over its corpus and score "
            "evidence recall (seconds per question); writes retrieval.json.",
        ),
    ] = False,
) -> None:
    """Research each question; write a table of timings, sources and citation quality."""
    from ttdr.api import Researcher, eval_markdown, retrieval_recall, run_eval

    settings = Settings()
    if retrieval_only:

        def replay() -> None:
            check_output_folder(out)
            steps = iterations if iterations is not None else settings.iterations
            result = retrieval_recall(questions, settings, steps=steps)
            text = json.dumps(result, indent=2)
            print_text(text)
            out.mkdir(parents=True, exist_ok=True)
            write_output(out / "retrieval.json", text)
            err.print(f"Wrote {shown(str(out / 'retrieval.json'))}")

        guarded(replay)
        return
    overrides = {"iterations": iterations, "search": search, "docs": docs or [], "model": model}
    overrides["judge_model"] = judge_model
    overrides |= ablations(denoise=denoise, evolve=evolve)

    def run() -> None:
        check_output_folder(out)  # before the research: a bad folder costs no runs
        researcher = Researcher(settings.research_config(**overrides), settings=settings)
        result = run_eval(researcher, questions, label=label, baseline=compare_with)
        table = eval_markdown(result)
        print_text(table)  # first, so a folder that cannot be written still leaves the table
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputWriteError(f"cannot create the folder {out}: {exc.strerror}") from None
        write_output(out / "eval.json", json.dumps(result, indent=2))
        write_output(out / "eval.md", table)
        err.print(f"Wrote {shown(str(out / 'eval.json'))} and eval.md")

    guarded(run)
