"""`ttdr research`: research a question (or resume a run) and print or save the report."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated, Literal

import typer

from ttdr.cli.console import err, fail, guarded, print_text, setting_help
from ttdr.cli.output import (
    check_output,
    choose_format,
    given,
    rendered,
    write_output,
    write_stdout,
)
from ttdr.config import Settings
from ttdr.errors import (
    ExportFormatError,
    OutputPathError,
    OutputWriteError,
    RemoteServerError,
    RunStopped,
)
from ttdr.language import LanguageSetting
from ttdr.models import (
    EventKind,
    Grounding,
    Length,
    ResearchConfig,
    RunStatus,
    SearchMode,
    check_collection_name,
)
from ttdr.terminal import shown

Backend = Literal["local", "ttdr", "openai"]


def research(
    ctx: typer.Context,
    question: Annotated[str | None, typer.Argument(help="What to research.")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue a run that stopped early.")
    ] = None,
    iterations: Annotated[
        int | None,
        typer.Option(
            "--iterations", "-n", min=0, max=50, help=setting_help("Denoising steps.", "iterations")
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
        list[Path] | None, typer.Option(help="Folder or file to index and search; repeatable.")
    ] = None,
    collection: Annotated[
        str | None,
        typer.Option(
            help="Search only this document collection (`ttdr index list`); --docs are filed in it."
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help=setting_help("Model name or checkpoint folder.", "model"))
    ] = None,
    backend: Annotated[
        Backend | None,
        typer.Option(
            help="Where the model runs: local, ttdr (a `ttdr serve` at TTDR_BASE_URL) or "
            "openai (an OpenAI-compatible server there; generation only). Default: "
            "TTDR_BACKEND, else local."
        ),
    ] = None,
    judge_model: Annotated[
        str | None,
        typer.Option(
            help=setting_help("A separate model to judge self-evolution variants.", "judge_model")
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the report to this file.")] = None,
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            help="Report format: md, json, html, pdf or docx; unset, --out's suffix picks it.",
        ),
    ] = "md",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
    denoise: Annotated[
        bool,
        typer.Option(
            "--denoise/--no-denoise", help="Revise the draft with search (off: a baseline)."
        ),
    ] = True,
    evolve: Annotated[
        bool, typer.Option("--evolve/--no-evolve", help="Self-evolution (off: faster).")
    ] = True,
    length: Annotated[
        Length | None,
        typer.Option(help=setting_help("Report size: short, medium or long.", "length")),
    ] = None,
    words: Annotated[
        int | None,
        typer.Option(
            min=50,
            max=20000,
            help=setting_help("Report size in words (about); overrides --length.", "words"),
        ),
    ] = None,
    language: Annotated[
        LanguageSetting | None,
        typer.Option(
            help=setting_help(
                "Language of the plan, the search queries and the report; auto: the question's.",
                "language",
            )
        ),
    ] = None,
    grounding: Annotated[
        Grounding | None,
        typer.Option(
            help=setting_help(
                "strict: drop sentences no source supports; marked: flag them; off.", "grounding"
            )
        ),
    ] = None,
    review_plan: Annotated[
        bool | None,
        typer.Option(
            "--review-plan/--no-review-plan",
            help=setting_help(
                "Stop after the plan to accept, edit ($EDITOR) or reject it.", "review_plan"
            ),
            show_default=False,
        ),
    ] = None,
) -> None:
    """Research a question and print (or --out) the cited report; the run is saved."""
    from ttdr.api import Researcher
    from ttdr.progress import ProgressView

    try:
        chosen = choose_format(given(ctx, "fmt"), out)
    except ExportFormatError as exc:
        raise fail(str(exc), 2) from None
    if resume is None and question is None:
        raise fail('Give a question (ttdr research "...") or --resume RUN_ID.', 2)
    if out is not None:
        guarded(lambda: check_output(out))  # before the run: a bad path costs no research
    settings = Settings(**({"backend": backend} if backend else {}))
    check_search_options(search or settings.search, settings, collection)
    config = settings.research_config(
        iterations=iterations, search=search, docs=docs or [], model=model, collection=collection,
        judge_model=judge_model, length=length, grounding=grounding, review_plan=review_plan,
        **ablations(denoise=denoise, evolve=evolve),
    )  # fmt: skip
    config = sized(config, length=length, words=words, language=language)
    researcher = Researcher(config, settings=settings)
    run_id: str | None = None
    finished = False
    stop = stop_on_signals()

    def run() -> None:
        nonlocal run_id, finished
        if resume is not None:
            # The run goes on under its own settings, so its progress counts its own steps.
            waiting = researcher.get_run(resume)
            steps, run_id = waiting.config.iterations, waiting.id
            if waiting.status is RunStatus.review:
                events = after_review(researcher, waiting.id, stop)
            else:
                events = researcher.stream_resume(resume, stop=stop)
        else:
            steps, events = config.iterations, researcher.stream(question, stop=stop)
        while events is not None:
            last = None
            with ProgressView(err, steps, quiet=quiet) as view:
                try:
                    for last in events:
                        run_id = last.run_id
                        view.show(last)
                except RunStopped:  # the signal reached the model first: the same interruption
                    raise KeyboardInterrupt(stop.reason) from None
                except RemoteServerError as exc:  # the run can go on once the server is back
                    if run_id is None:
                        raise
                    raise RemoteServerError(
                        f"{exc} Run {run_id} is saved as failed with its drafts; once the "
                        f"server answers again: ttdr research --resume {run_id}"
                    ) from None
            if last is None or last.kind is not EventKind.review:
                break
            events = after_review(researcher, last.run_id, stop)
            if events is None:
                return
        finished = True
        deliver(*rendered(researcher.get_run(run_id), chosen), out, run_id)

    try:
        guarded(run)
    except KeyboardInterrupt:
        if run_id is None:
            raise fail("Interrupted before the run started.", 130) from None
        kept = len(researcher.get_run(run_id).drafts_list)
        raise fail(
            f"Interrupted. Run {run_id} is saved as interrupted with {kept} draft version(s): "
            f"ttdr history show {run_id}",
            130,
        ) from None
    except typer.Exit:
        raise
    except Exception as exc:  # an unexpected failure
        if finished:
            suffix = f" Run {run_id} is saved as done: ttdr history show {run_id}"
        elif run_id:  # the run is already marked failed
            suffix = f" Run {run_id} is saved as failed with its drafts."
        else:
            suffix = ""
        raise fail(f"{type(exc).__name__}: {exc}.{suffix}", 1) from exc


def after_review(researcher, run_id: str, stop: threading.Event):
    """The events of the run going on after its plan review, or None when the person
    rejected the plan or left it for later (the run is kept either way, and says how)."""
    from ttdr.cli.review import review_plan

    waiting = researcher.get_run(run_id)
    review = review_plan(waiting.question, waiting.plan)
    if review.decision == "reject":
        researcher.reject_plan(run_id)
        err.print(
            f"Plan rejected. Run {run_id} is kept as interrupted: ttdr research --resume "
            f"{run_id} reviews it again, ttdr history delete {run_id} removes it."
        )
        return None
    if review.decision == "later":
        err.print(f"Run {run_id} waits for its plan review: ttdr research --resume {run_id}")
        return None
    if review.decision == "edit":
        err.print(f"Researching with the edited plan ({len(review.plan.sections)} sections)")
    return researcher.stream_resume(
        run_id, plan=review.plan if review.decision == "edit" else None, stop=stop
    )


def deliver(text: str | bytes, warning: str | None, out: Path | None, run_id: str) -> None:
    """The report to `out`, or to stdout; when `out` cannot be written after all (a full disk,
    the folder gone), a text report goes to stdout instead, saying where the run is kept."""
    if warning:
        err.print(f"[yellow]warning:[/] {shown(warning)}")
    if out is None:
        write_stdout(text)
    else:
        try:
            write_output(out, text)
        except (OutputPathError, OutputWriteError) as exc:
            kept = f"run {run_id} is saved as done: ttdr history export {run_id} --out FILE"
            if isinstance(text, str):
                print_text(text)
                raise fail(
                    f"{exc}. The report is printed on stdout instead, and {kept}", 1
                ) from None
            raise fail(f"{exc}. The report is not lost: {kept}", 1) from None
        err.print(f"Report written to {shown(str(out))}")
    err.print(f"Saved as run [bold]{run_id}[/]: ttdr history show {run_id}")


def check_search_options(mode: str, settings: Settings, collection: str | None) -> None:
    """Refuse, before any run is stored, a collection name that cannot be one and
    `--search searxng` with no instance to ask."""
    if collection is not None:
        try:
            check_collection_name(collection)
        except ValueError as exc:
            raise fail(f"--collection {exc}", 2) from None
    if mode == "searxng" and not (settings.searxng_url or "").strip():
        raise fail(
            "--search searxng needs the instance's address: set TTDR_SEARXNG_URL, e.g. "
            "TTDR_SEARXNG_URL=http://localhost:8888",
            2,
        )


def sized(
    config: ResearchConfig, *, length: str | None, words: int | None, language: str | None
) -> ResearchConfig:
    """`config` with the report's size and language flags: `--length` alone also sets aside
    a `words` from the settings (a flag wins over a variable or a file), `--words` wins over
    `--length`, and `--language auto` detects the question's language even when a setting
    names one."""
    update: dict = {}
    if length is not None and words is None:
        update["words"] = None
    if words is not None:
        update["words"] = words
    if language is not None:
        update["language"] = language  # "auto" becomes None: detect
    if not update:
        return config
    return ResearchConfig.model_validate({**config.model_dump(), **update})


def ablations(*, denoise: bool, evolve: bool) -> dict:
    """Config overrides for the TTD-DR ablations (the baselines `ttdr eval` compares)."""
    overrides: dict = {}
    if not denoise:
        overrides["denoise"] = False
    if not evolve:
        overrides |= {"evolve": [], "variants": 1, "evolution_rounds": 0}
    return overrides


class SignalStop(threading.Event):
    """The run's stop request, set by a signal; `reason` names the signal."""

    reason = "SIGINT"


def stop_on_signals() -> SignalStop:
    """Ctrl-C and `kill` both end a run as `interrupted`, with its drafts kept.

    The handler sets the run's stop event before it interrupts the main thread: the model is
    generating in one of LangGraph's worker threads, which a KeyboardInterrupt never reaches,
    and it checks the event before every forward pass, so the run stops within one. SIGINT is
    re-armed because a parent shell may have started us with it ignored.
    """
    stop = SignalStop()

    def interrupt(signum: int, _frame) -> None:
        stop.reason = signal.Signals(signum).name
        stop.set()
        raise KeyboardInterrupt(stop.reason)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)
    return stop
