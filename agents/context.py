"""What every node needs besides the state: the model, retrieval, a recorder (the store) and
a way to report progress. Passed as LangGraph runtime context, so it is never checkpointed.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from langgraph.config import get_stream_writer

from agents.forms import Form
from agents.forms import fill as fill_form
from agents.judge import Verdict
from agents.prompt_book import SEEDS, ChosenPrompt
from agents.prompts import in_language
from backends.llm.protocol import ChatMessage, Editor, GenerationStats, Generator
from backends.search.retriever import Retriever
from ttdr.errors import RunStopped
from ttdr.events import EventPayload, payload_data
from ttdr.language import output_language
from ttdr.models import EventKind, ResearchConfig, RunEvent, RunStats, Stage
from ttdr.recording import RunRecorder


@dataclass
class ResearchContext:
    run_id: str
    config: ResearchConfig
    generator: Generator
    retriever: Retriever
    store: RunRecorder
    started_at: float = field(default_factory=time.monotonic)
    stop: threading.Event | None = None  # set by another thread to end the run cleanly
    judge_generator: Generator | None = None  # None: the research model judges too
    stage_stats: dict[str, GenerationStats] = field(
        default_factory=lambda: defaultdict(GenerationStats)
    )
    stage_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    prompts: dict[str, ChosenPrompt] = field(default_factory=dict)
    verdicts: dict[str, list[Verdict]] = field(default_factory=lambda: defaultdict(list))
    citation_stats: dict[str, Any] = field(default_factory=dict)
    judge_blind: bool = False  # set once the judge scored a component's variants all alike
    _warned_trim: bool = False  # the run says once that prompts were cut to fit the context
    # Parallel search branches write stats and verdicts from several threads.
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(
        self,
        stage: Stage,
        kind: EventKind,
        message: str,
        *,
        iteration: int | None = None,
        payload: EventPayload | None = None,
        **fields: Any,
    ) -> RunEvent:
        """Store the event first (so nothing is lost), then hand it to whoever streams.

        What the stage reports besides its message is `payload`, or its fields as keywords:
        either is validated as the payload type of this stage and kind (ttdr/events.py).
        Every node emits as it goes, so this is also where a requested stop takes effect.
        """
        run_event = RunEvent(
            run_id=self.run_id,
            stage=stage,
            kind=kind,
            message=message,
            iteration=iteration,
            data=payload_data(stage, kind, payload, **fields),
            elapsed_s=round(time.monotonic() - self.started_at, 3),
        )
        self.store.add_event(run_event)
        get_stream_writer()(run_event)
        if self.stop is not None and self.stop.is_set():
            raise RunStopped("the run was stopped")
        return run_event

    @contextmanager
    def stage(self, stage: Stage, message: str, *, iteration: int | None = None) -> Iterator[None]:
        """Announce a stage and add its wall time to the run's per-stage timings."""
        self.emit(stage, EventKind.started, message, iteration=iteration)
        start = time.monotonic()
        try:
            yield
        finally:
            with self._lock:
                self.stage_seconds[stage.value] += time.monotonic() - start

    def write(
        self,
        stage: Stage,
        messages: Sequence[ChatMessage],
        max_new_tokens: int | None = None,
        *,
        temperature: float | None = None,
        seed: int | None = None,
    ) -> str:
        """Generate text for a stage and account its cost to that stage; judging goes to the
        judge model when the run has one."""
        if stage is not Stage.judge:  # the judge's reply has a fixed (English) form
            messages = in_language(messages, output_language(self.config.language))
        generation = self.model_for(stage).generate(
            messages,
            max_new_tokens or self.config.section_tokens,
            temperature=self.config.temperature if temperature is None else temperature,
            seed=self.config.seed if seed is None else seed,
            stop=self.stop,
        )
        self.account(stage, generation.stats)
        return generation.text

    def model_for(self, stage: Stage) -> Generator:
        """Judging goes to the judge model when the run has one; everything else to the
        research model."""
        judge = self.judge_generator if stage is Stage.judge else None
        return judge or self.generator

    def editor_for(self, stage: Stage) -> Editor | None:
        """The stage's model as an `Editor`, or None when it can only generate (a chat
        server), so the stage falls back to free text."""
        model = self.model_for(stage)
        return model if isinstance(model, Editor) else None

    def fill(self, stage: Stage, editor: Editor, form: Form) -> dict[str, str]:
        """A form's blanks filled by `editor`, its cost accounted to `stage`."""
        filled = fill_form(editor, form, stop=self.stop)
        self.account(stage, filled.stats)
        return filled.values

    def account(self, stage: Stage, stats: GenerationStats) -> None:
        with self._lock:
            self.stage_stats[stage.value] += stats
            warn = stats.trimmed_prompt_tokens > 0 and not self._warned_trim
            self._warned_trim = self._warned_trim or warn
        if warn:
            self.emit(
                stage,
                EventKind.warning,
                f"A prompt was {stats.trimmed_prompt_tokens} tokens longer than the model's "
                f"context ({self.generator.info.context_length}); its middle was cut to fit",
            )

    def prompt(self, component: str) -> str:
        """The template this run uses for an evolving component (the seed if none chosen)."""
        chosen = self.prompts.get(component)
        return chosen.text if chosen else SEEDS[component]

    def record_verdict(self, component: str, verdict: Verdict) -> None:
        with self._lock:
            self.verdicts[component].append(verdict)

    def stats_summary(self) -> RunStats:
        total = sum(self.stage_stats.values(), GenerationStats())
        return RunStats(
            model=self.generator.info.name,
            decoding=self.generator.info.decoding,
            device=self.generator.info.device,
            judge_model=(self.judge_generator or self.generator).info.name,
            generation=total.as_dict(),
            stages={
                name: {**stats.as_dict(), "wall_s": round(self.stage_seconds[name], 3)}
                for name, stats in self.stage_stats.items()
            },
            wall_s=round(time.monotonic() - self.started_at, 3),
            prompts={component: chosen.id for component, chosen in self.prompts.items()},
            citations=self.citation_stats or None,  # set by the report node
            judge_scores={
                component: [v.score for v in verdicts]
                for component, verdicts in self.verdicts.items()
            },
        )
