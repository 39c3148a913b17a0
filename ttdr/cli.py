"""The `ttdr` command line: research, history, the local index and models.

Exit codes: 0 success, 1 a run or command failed, 2 bad input, 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ttdr import __version__
from ttdr.config import Settings
from ttdr.errors import (
    DocsPathError,
    InvalidQuestionError,
    RunNotFoundError,
    RunNotResumableError,
    TtdrError,
)
from ttdr.models import Grounding, Length, RunStatus, SearchMode
from ttdr.train_cli import train_app

app = typer.Typer(
    help="ttdr: deep research by test-time diffusion, on a local diffusion language model.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
history_app = typer.Typer(help="Saved research runs.", no_args_is_help=True)
index_app = typer.Typer(help="The local document index.", no_args_is_help=True)
models_app = typer.Typer(help="Models ttdr can use.", invoke_without_command=True)
bench_app = typer.Typer(help="Benchmarks that print JSON.", no_args_is_help=True)
prompts_app = typer.Typer(help="The evolving prompt population.", no_args_is_help=True)
app.add_typer(history_app, name="history")
app.add_typer(index_app, name="index")
app.add_typer(models_app, name="models")
app.add_typer(bench_app, name="bench")
app.add_typer(prompts_app, name="prompts")
app.add_typer(train_app, name="train")

err = Console(stderr=True, soft_wrap=True)
INPUT_ERRORS = (
    InvalidQuestionError,
    DocsPathError,
    RunNotFoundError,
    RunNotResumableError,
)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]Error:[/] {escape(message)}")
    return typer.Exit(code)


def guarded(action: Callable[[], None]) -> None:
    """Turn a user-facing error into a clear message and an exit code, not a traceback."""
    try:
        action()
    except INPUT_ERRORS as exc:
        raise fail(str(exc), 2) from None
    except TtdrError as exc:
        raise fail(str(exc), 1) from None


def stop_on_signals() -> None:
    """Ctrl-C and `kill` both end a run as `interrupted`, with its drafts kept.

    SIGINT is re-armed because a parent shell may have started us with it ignored.
    """

    def interrupt(signum: int, _frame) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)


def print_table(table: Table) -> None:
    """Tables fit the terminal; piped output gets room so ids and paths are never cut."""
    console = Console()
    (console if console.is_terminal else Console(width=240)).print(table)


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


@app.command()
def research(
    question: Annotated[str | None, typer.Argument(help="What to research.")] = None,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Continue a run that stopped early.")
    ] = None,
    iterations: Annotated[
        int | None, typer.Option("--iterations", "-n", min=0, max=50, help="Denoising steps.")
    ] = None,
    search: Annotated[
        SearchMode | None, typer.Option(help="web, local, or auto (web, local if offline).")
    ] = None,
    docs: Annotated[
        list[Path] | None, typer.Option(help="Folder or file to index and search; repeatable.")
    ] = None,
    model: Annotated[str | None, typer.Option(help="Model name or checkpoint folder.")] = None,
    judge_model: Annotated[
        str | None, typer.Option(help="A separate model to judge self-evolution variants.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write the report to this file.")] = None,
    fmt: Annotated[str, typer.Option("--format", help="Report format: md or json.")] = "md",
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors.")] = False,
    no_denoise: Annotated[bool, typer.Option(help="Skip draft revision (a baseline).")] = False,
    no_evolve: Annotated[bool, typer.Option(help="Skip self-evolution (faster).")] = False,
    length: Annotated[
        Length | None, typer.Option(help="Report size: short, medium or long.")
    ] = None,
    grounding: Annotated[
        Grounding | None,
        typer.Option(help="strict: drop sentences no source supports; marked: flag them; off."),
    ] = None,
) -> None:
    """Research a question and print (or --out) the cited report; the run is saved."""
    from ttdr.api import Researcher
    from ttdr.export import export_run
    from ttdr.progress import ProgressView

    if fmt not in ("md", "json"):
        raise fail(f"--format must be md or json, not {fmt!r}", 2)
    if resume is None and question is None:
        raise fail('Give a question (ttdr research "...") or --resume RUN_ID.', 2)
    settings = Settings()
    config = settings.research_config(
        iterations=iterations, search=search, docs=docs or [], model=model,
        judge_model=judge_model, length=length, grounding=grounding,
        **ablations(no_denoise, no_evolve),
    )  # fmt: skip
    researcher = Researcher(config, settings=settings)
    run_id = None
    stop_on_signals()

    def run() -> None:
        nonlocal run_id
        events = (
            researcher.stream_resume(resume) if resume is not None else researcher.stream(question)
        )
        with ProgressView(err, config.iterations, quiet=quiet) as view:
            for event in events:
                run_id = event.run_id
                view.show(event)
        text = export_run(researcher.get_run(run_id), fmt)
        if out is not None:
            out.write_text(text, encoding="utf-8")
            err.print(f"Report written to {escape(str(out))}")
        else:
            sys.stdout.write(text)
        err.print(f"Saved as run [bold]{run_id}[/]: ttdr history show {run_id}")

    try:
        guarded(run)
    except KeyboardInterrupt:
        if run_id is None:
            raise fail("Interrupted before the run started.", 130) from None
        kept = len(researcher.store.drafts(run_id))
        raise fail(
            f"Interrupted. Run {run_id} is saved as interrupted with {kept} draft version(s): "
            f"ttdr history show {run_id}",
            130,
        ) from None
    except typer.Exit:
        raise
    except Exception as exc:  # an unexpected failure: the run is already marked failed
        suffix = f" Run {run_id} is saved as failed with its drafts." if run_id else ""
        raise fail(f"{type(exc).__name__}: {exc}.{suffix}", 1) from exc


def ablations(no_denoise: bool, no_evolve: bool) -> dict:
    """Config overrides for the TTD-DR ablations (the baselines `ttdr eval` compares)."""
    overrides: dict = {}
    if no_denoise:
        overrides["denoise"] = False
    if no_evolve:
        overrides |= {"evolve": [], "variants": 1, "evolution_rounds": 0}
    return overrides


# -- history --------------------------------------------------------------------------------


def _store():
    from ttdr.store import Store

    return Store(Settings().db_path)


@history_app.command("list")
def history_list(
    status: Annotated[RunStatus | None, typer.Option(help="Only runs with this status.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many runs, newest first.")] = 30,
) -> None:
    """List saved runs, newest first."""
    runs = _store().list_runs(limit=limit, status=status)
    if not runs:
        err.print('No runs yet. Start one with: ttdr research "your question"')
        return
    table = Table("id", "status", "started (UTC)", "drafts", "sources", "question")
    for run in runs:
        table.add_row(
            run.id,
            run.status.value,
            f"{run.created_at:%Y-%m-%d %H:%M}",
            str(run.drafts),
            str(run.sources),
            escape(run.question[:70]),
        )
    print_table(table)


@history_app.command("show")
def history_show(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
) -> None:
    """Show a run: its status, drafts and report (or latest draft)."""
    from ttdr.export import report_markdown

    def show() -> None:
        run = _store().get_run(run_id)
        err.print(
            f"[bold]{run.id}[/] · {run.status.value} · {run.created_at:%Y-%m-%d %H:%M} UTC · "
            f"model {escape(run.model)} · {run.drafts} drafts · {run.sources} sources"
        )
        if run.error:
            err.print(f"[red]error:[/] {escape(run.error)}")
        sys.stdout.write(report_markdown(run))

    guarded(show)


@history_app.command("export")
def history_export(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    fmt: Annotated[str, typer.Option("--format", help="md, json or html.")] = "md",
    out: Annotated[Path | None, typer.Option(help="Write to this file instead of stdout.")] = None,
) -> None:
    """Export a run as Markdown, JSON or HTML."""
    from ttdr.export import export_run

    if fmt not in ("md", "json", "html"):
        raise fail(f"--format must be md, json or html, not {fmt!r}", 2)

    def export() -> None:
        text = export_run(_store().get_run(run_id), fmt)
        if out is None:
            sys.stdout.write(text)
        else:
            out.write_text(text, encoding="utf-8")
            err.print(f"Exported to {escape(str(out))}")

    guarded(export)


@history_app.command("delete")
def history_delete(
    run_id: Annotated[str, typer.Argument(help="Run id (or a unique prefix).")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a run and everything saved with it."""

    def delete() -> None:
        from ttdr.api import Researcher

        researcher = Researcher(settings=Settings())  # also removes the run's checkpoints
        run = researcher.get_run(run_id)
        if not yes and not typer.confirm(f"Delete run {run.id} ({run.question[:60]})?"):
            raise typer.Exit(1)
        researcher.delete_run(run.id)
        err.print(f"Deleted run {run.id}")

    guarded(delete)


# -- index ----------------------------------------------------------------------------------


def _index():
    from ttdr.api import open_index

    return open_index(Settings())


@index_app.command("add")
def index_add(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (.md .txt .html .pdf).")],
) -> None:
    """Add documents to the local index (unchanged files are skipped)."""

    def add() -> None:
        index = _index()
        for path in paths:
            report = index.add(path)
            err.print(
                f"{escape(str(path))}: {report.added} added, {report.updated} updated, "
                f"{report.unchanged} unchanged, {len(report.skipped)} skipped"
            )
            for skipped in report.skipped:
                err.print(f"  [yellow]skipped[/] {escape(skipped.url)}: {escape(skipped.reason)}")

    guarded(add)


@index_app.command("search")
def index_search(
    query: Annotated[str, typer.Argument(help="What to look for.")],
    k: Annotated[int, typer.Option("-k", min=1, max=50, help="How many passages.")] = 5,
) -> None:
    """Search the local index and print the best passages."""
    index = _index()
    if index.count() == 0:
        raise fail("The local index is empty: add documents with `ttdr index add PATH`.", 1)
    passages = index.search(query, k)
    if not passages:
        err.print("No matching passages.")
    for rank, passage in enumerate(passages, start=1):
        Console().print(f"[bold]{rank}. {escape(passage.title)}[/] ({passage.score:.2f})")
        Console().print(f"   [dim]{escape(passage.url)}[/]")
        Console().print(f"   {escape(passage.text[:300])}", highlight=False)


@index_app.command("list")
def index_list() -> None:
    """List indexed documents."""
    documents = _index().documents()
    if not documents:
        err.print("The local index is empty: add documents with `ttdr index add PATH`.")
        return
    table = Table("path", "title", "chars", "passages")
    for doc in documents:
        table.add_row(escape(str(doc.path)), escape(doc.title), str(doc.chars), str(doc.passages))
    print_table(table)


@index_app.command("remove")
def index_remove(path: Annotated[Path, typer.Argument(help="A file or folder to forget.")]) -> None:
    """Remove documents from the local index."""
    removed = _index().remove(path)
    err.print(f"Removed {removed} document(s)")


# -- models ---------------------------------------------------------------------------------


@models_app.callback()
def models_default(ctx: typer.Context) -> None:
    """List the models (same as `ttdr models list`); `ttdr models info NAME` for one."""
    if ctx.invoked_subcommand is None:
        models_list()


@models_app.command("list")
def models_list() -> None:
    """Model presets, their family and decoding, and whether they are in the cache."""
    from backends.llm.families import FAMILIES
    from backends.llm.registry import model_statuses
    from ttdr.models import DEFAULT_MODEL

    settings = Settings()
    table = Table("name", "family", "decoding", "in cache", "location")
    for status in model_statuses(settings.model_cache):
        preset = status.preset
        name = preset.name + (" (default)" if preset.name == DEFAULT_MODEL else "")
        if status.present:
            where = "yes"
        elif preset.fetch is not None:
            where = "no (fetched on first use)"
        else:
            where = "no (place the checkpoint folder there)"
        decoding = FAMILIES[preset.family].facts.describe()
        table.add_row(name, preset.family, decoding, where, str(status.folder))
    print_table(table)
    err.print("Any local checkpoint folder of these families also works: --model PATH")


@models_app.command("info")
def models_info(
    name: Annotated[str, typer.Argument(help="A preset, a family name or a checkpoint folder.")],
) -> None:
    """A model's family and decode defaults: attention, mask id, block size, logit shift."""
    from backends.llm.registry import PRESETS, describe_folder, family_of, model_facts

    def info() -> None:
        family = family_of(name)
        facts = model_facts(name, Settings().model_cache)
        mask = "none (autoregressive)" if facts.mask_token is None else str(facts.mask_token)
        rows = {
            "family": family.name,
            "decoding": facts.describe(),
            "attention": facts.attention,
            "block size": str(facts.block_size)
            + (f" (sub-block {facts.sub_block_size})" if facts.sub_block_size else ""),
            "threshold": str(facts.threshold),
            "logit shift": "yes" if facts.logit_shift else "no",
            "mask id": mask,
            "end ids": ", ".join(map(str, facts.eos_ids)) or "from the tokenizer",
        }
        preset = PRESETS.get(name)
        if preset is not None:
            folder = preset.folder(Settings().model_cache)
            rows |= {"source": preset.source, "about": preset.description, "folder": str(folder)}
        else:
            folder = Path(name)
        if (folder / "config.json").is_file():
            rows |= {k: str(v) for k, v in describe_folder(folder).items()}
        table = Table("field", "value")
        for key, value in rows.items():
            table.add_row(key, escape(value))
        print_table(table)

    guarded(info)


# -- prompts --------------------------------------------------------------------------------


def _prompt_store():
    from ttdr.store import PromptStore

    return PromptStore(_store())


@prompts_app.command("list")
def prompts_list() -> None:
    """Prompt versions per component: fitness (mean judge score), uses, parent."""
    versions = _prompt_store().versions()
    if not versions:
        err.print("No prompt versions yet: the first research run seeds them.")
        return
    table = Table("id", "component", "fitness", "uses", "parent", "note")
    for v in versions:
        fitness = f"{v.fitness:.2f}" if v.fitness is not None else "—"
        parent = str(v.parent_id) if v.parent_id else ""
        table.add_row(str(v.id), v.component, fitness, str(v.uses), parent, escape(v.note))
    print_table(table)


@prompts_app.command("show")
def prompts_show(
    component: Annotated[str, typer.Argument(help="plan, questions, answer or report.")],
) -> None:
    """Every version of one component's prompt, fittest first."""
    from agents.prompt_book import SEEDS

    if component not in SEEDS:
        raise fail(f"unknown component {component!r}: use one of {', '.join(SEEDS)}", 2)
    versions = _prompt_store().versions(component)
    if not versions:
        err.print(f"No versions of {component} yet; the seed is:")
        sys.stdout.write(SEEDS[component] + "\n")
        return
    ranked = sorted(versions, key=lambda v: (v.fitness is None, -(v.fitness or 0), v.id))
    for v in ranked:
        fitness = f"{v.fitness:.2f}" if v.fitness is not None else "untried"
        err.print(f"[bold]#{v.id}[/] fitness {fitness}, uses {v.uses}, parent {v.parent_id}")
        sys.stdout.write(v.text + "\n\n")


@prompts_app.command("reset")
def prompts_reset(
    component: Annotated[str | None, typer.Argument(help="One component, or all.")] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
) -> None:
    """Forget evolved prompts; the next run starts again from the seeds."""
    what = component or "all components"
    if not yes and not typer.confirm(f"Delete every prompt version of {what}?"):
        raise typer.Exit(1)
    removed = _prompt_store().reset(component)
    err.print(f"Removed {removed} prompt version(s) of {what}")


# -- evaluation -----------------------------------------------------------------------------


@app.command("eval")
def eval_command(
    questions: Annotated[Path, typer.Argument(help='JSONL: one {"question": ...} per line.')],
    out: Annotated[Path, typer.Option(help="Folder for eval.json and eval.md.")] = Path(
        "ttdr-eval"
    ),
    label: Annotated[str, typer.Option(help="A name for this run set.")] = "ttdr",
    compare_with: Annotated[
        Path | None, typer.Option("--compare", help="An earlier eval.json to judge against.")
    ] = None,
    iterations: Annotated[int | None, typer.Option("--iterations", "-n", min=0)] = None,
    search: Annotated[SearchMode | None, typer.Option()] = None,
    docs: Annotated[list[Path] | None, typer.Option()] = None,
    model: Annotated[str | None, typer.Option()] = None,
    judge_model: Annotated[
        str | None, typer.Option(help="A separate judge (self-evolution and --compare).")
    ] = None,
    no_denoise: Annotated[bool, typer.Option(help="Ablation: no draft revision.")] = False,
    no_evolve: Annotated[bool, typer.Option(help="Ablation: no self-evolution.")] = False,
) -> None:
    """Research each question; write a table of timings, sources and citation quality."""
    import json

    from ttdr.api import Researcher
    from ttdr.evaluation import compare, evaluate, markdown_table, read_questions

    settings = Settings()
    overrides = {"iterations": iterations, "search": search, "docs": docs or [], "model": model}
    overrides["judge_model"] = judge_model
    overrides |= ablations(no_denoise, no_evolve)

    def run() -> None:
        items = read_questions(questions)
        researcher = Researcher(settings.research_config(**overrides), settings=settings)
        result = evaluate(researcher, items, label=label, questions_file=questions)
        if compare_with is not None:
            baseline = json.loads(compare_with.read_text(encoding="utf-8"))
            result["compare"] = compare(researcher, result, baseline)
        out.mkdir(parents=True, exist_ok=True)
        (out / "eval.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        table = markdown_table(result)
        (out / "eval.md").write_text(table, encoding="utf-8")
        sys.stdout.write(table)
        err.print(f"Wrote {escape(str(out / 'eval.json'))} and eval.md")

    guarded(run)


# -- UI -------------------------------------------------------------------------------------


@app.command()
def ui(
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8501,
    address: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
) -> None:
    """Open the research UI (Streamlit) at http://ADDRESS:PORT."""
    from ui.launch import launch

    err.print(f"ttdr UI at http://{address}:{port} (Ctrl-C stops it)")
    raise typer.Exit(launch(port, address))


# -- benchmarks -----------------------------------------------------------------------------


@bench_app.command("engine")
def bench_engine(
    model: Annotated[str | None, typer.Option(help="Preset or checkpoint folder.")] = None,
    tiny: Annotated[
        str | None, typer.Option(help="Benchmark a tiny random model of this family instead.")
    ] = None,
    tokens: Annotated[int, typer.Option(min=4, help="Tokens to fill per prompt.")] = 64,
    repeats: Annotated[int, typer.Option(min=1, help="Timed repeats (median).")] = 1,
) -> None:
    """Autoregressive vs naive diffusion vs block-parallel decoding on the same weights."""
    import json

    from backends.llm.bench import run_engine_benchmark

    settings = Settings()

    def bench() -> None:
        report = run_engine_benchmark(
            model or settings.model,
            settings.model_cache,
            tiny_family=tiny,
            new_tokens=tokens,
            repeats=repeats,
            device=settings.device,
            dtype=settings.dtype,
        )
        typer.echo(json.dumps(report, indent=2))

    guarded(bench)


@bench_app.command("retrieval")
def bench_retrieval(
    pages: Annotated[int, typer.Option(min=10, help="Fixture pages served on loopback.")] = 200,
    local_docs: Annotated[int, typer.Option(min=10, help="Documents to index.")] = 1000,
) -> None:
    """Fetching (concurrent vs serial), extraction and local-index speed, as JSON."""
    import json

    from backends.search.bench import run_retrieval_benchmark

    typer.echo(json.dumps(run_retrieval_benchmark(pages, local_docs), indent=2))


def main() -> None:
    try:
        app()
    except TtdrError as exc:  # one no command caught, e.g. an unusable history database
        raise SystemExit(fail(str(exc), 1).exit_code) from None


if __name__ == "__main__":
    main()
