"""Real `ttdr` processes for the reliability tests, and a seam that strikes at a chosen event.

Every command is the installed CLI's entry point (`ttdr.cli:main`) in a fresh interpreter, on
the tiny checkpoint and the fixture corpus, with a data directory of the test's own.

A stage of the tiny model takes milliseconds, so a test polling the history from outside would
land anywhere inside it. `AT_EVENT` runs the same CLI but makes the process act on itself right
after the history committed a chosen event: SIGKILL (no handler, no cleanup: what `kill -9` or
the OOM killer does), fill the disk its data directory is on, or from then on take as long per
forward pass as a large model on a CPU does (a sleep before each pass of the transformer).
Nothing of ttdr is replaced; the seam only wraps the store's `add_event` to watch the events go
by, and the slow model is a forward hook on the real one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ttdr.models import DraftVersion, QAPair, RunEvent, RunStatus, Source
from ttdr.store import Store

TTDR = [sys.executable, "-c", "from ttdr.cli import main; main()"]
QUESTION = "Why does the ocean have tides?"
SIGKILLED = -9

AT_EVENT = """
import os, signal, sys, time
import torch
from ttdr.store.runs import Store

stage, kind, action = sys.argv[1:4]
record = Store.add_event


def fill_disk(filler):
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    for size in (1 << 20, 4096, 1):
        try:
            while True:
                os.write(fd, b"\\0" * size)
        except OSError:
            pass
    os.close(fd)


struck = []


def slow_down(seconds):
    def before_forward(module, _args):
        if type(module).__name__ == "Transformer":  # once per pass, not per layer
            time.sleep(seconds)

    torch.nn.modules.module.register_module_forward_pre_hook(before_forward)


def add_event(self, event):
    record(self, event)  # committed first: the history holds it when the fault strikes
    if event.stage.value == stage and event.kind.value == kind and not struck:
        struck.append(event)
        if action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif action.startswith("slow:"):
            slow_down(float(action.removeprefix("slow:")))
        else:
            fill_disk(action.removeprefix("fill:"))


Store.add_event = add_event
sys.argv = ["ttdr", *sys.argv[4:]]
from ttdr.cli import main

main()
"""


def fast_env(home: Path, model: Path, **extra: str) -> dict[str, str]:
    """Settings for a run of a few seconds; one thread each, so runs side by side share the
    two cores of CI fairly. The step count is left to the command line (`-n`), so a resumed
    run that forgot its own would show it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TTDR_")}
    return env | {
        "TTDR_HOME": str(home),
        "TTDR_MODEL": str(model),
        "TTDR_SEARCH": "local",
        "TTDR_SECTION_TOKENS": "12",
        "TTDR_VARIANTS": "1",  # self-evolution off: a run takes seconds
        "TTDR_EVOLUTION_ROUNDS": "0",
        "OMP_NUM_THREADS": "1",
        "NO_COLOR": "1",
        **extra,
    }


def start(args: Sequence[str], env: dict[str, str], *, at: str | None = None) -> subprocess.Popen:
    """`ttdr ARGS`; with `at="stage:kind:action"` (action `kill`, `fill:FILE` or
    `slow:SECONDS`) the process strikes itself at the first such event."""
    command = [*TTDR, *args]
    if at is not None:
        command = [sys.executable, "-c", AT_EVENT, *at.split(":", 2), *args]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def finish(process: subprocess.Popen, timeout: float = 240) -> subprocess.CompletedProcess:
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"ttdr ran past {timeout} s: {stderr[-2000:]}") from None
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def ttdr(args: Sequence[str], env: dict[str, str], timeout: float = 240):
    return finish(start(args, env), timeout)


@dataclass(frozen=True)
class Kept:
    """Everything the history holds for its one run, in a form that compares by value."""

    run_id: str
    status: RunStatus
    drafts: list[tuple[int, str]]
    qa: list[tuple[int, str, str, tuple[int, ...]]]
    sources: list[tuple[int, str]]
    report: str | None
    events: list[tuple[str, str, int | None, str]]

    @classmethod
    def of(cls, db: Path) -> Kept:
        store = Store(db)
        try:
            (summary,) = store.list_runs()
            run = store.get_run(summary.id)
            events = store.events(run.id)
        finally:
            store.close()
        return cls(
            run_id=run.id,
            status=run.status,
            drafts=[_draft(d) for d in run.drafts_list],
            qa=[_qa(q) for q in run.qa_pairs],
            sources=[_source(s) for s in run.sources_list],
            report=run.report.markdown if run.report else None,
            events=[event_key(e) for e in events],
        )


def event_key(event: RunEvent) -> tuple[str, str, int | None, str]:
    return (event.stage.value, event.kind.value, event.iteration, event.message)


def _draft(draft: DraftVersion) -> tuple[int, str]:
    return (draft.iteration, draft.text)


def _qa(qa: QAPair) -> tuple[int, str, str, tuple[int, ...]]:
    return (qa.iteration, qa.question, qa.answer, tuple(qa.source_numbers))


def _source(source: Source) -> tuple[int, str]:
    return (source.number, source.url)


def no_traceback(result: subprocess.CompletedProcess) -> bool:
    return "Traceback" not in result.stderr and "Traceback" not in result.stdout
