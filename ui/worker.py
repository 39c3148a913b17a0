"""Research runs executing in background threads, so the page stays responsive.

Streamlit reruns a page's script on every interaction and forgets its locals, so a run cannot
live in a script. It lives here instead, one thread per run, registered by run id for as long
as the server process lives: leaving a page, closing a tab or opening another one does not
stop it. The pages never read progress from a worker; every event and draft is already in the
store, so any tab (or another process) follows a run by its id alone. A worker only keeps what
the store cannot: the event that stops its run.

No streamlit here: the threads must not touch a script's context.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from ttdr.api import Researcher
from ttdr.config import Settings
from ttdr.models import Plan, ResearchConfig, RunEvent

log = logging.getLogger(__name__)

START_TIMEOUT_S = 60.0  # a run is in the store right after its first event; this is slack


class RunWorker:
    """One run consumed on its own thread; `run_id` is known after its first event."""

    def __init__(self, events: Callable[[threading.Event], Iterator[RunEvent]], name: str) -> None:
        self.stop = threading.Event()
        self.run_id: str | None = None
        self.error: BaseException | None = None
        self._started = threading.Event()
        self._events = events
        self._thread = threading.Thread(target=self._consume, name=name, daemon=True)

    def start(self) -> str:
        """Start the thread; return the run id once the run is in the store."""
        self._thread.start()
        if not self._started.wait(START_TIMEOUT_S):
            raise TimeoutError(f"the run did not start within {START_TIMEOUT_S:.0f} s")
        if self.run_id is None:  # refused before it was stored (bad question, missing docs)
            raise self.error or RuntimeError("the run ended before it started")
        return self.run_id

    def is_alive(self) -> bool:
        return self._thread.is_alive()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _consume(self) -> None:
        try:
            for run_event in self._events(self.stop):
                if self.run_id is None:
                    self.run_id = run_event.run_id
                    _register(self)
                    self._started.set()
        except BaseException as exc:  # the store already holds the status and the error
            self.error = exc
            if self.run_id is not None:
                log.info("run %s ended: %s: %s", self.run_id, type(exc).__name__, exc)
        finally:
            self._started.set()


_workers: dict[str, RunWorker] = {}
_lock = threading.Lock()


def _register(worker: RunWorker) -> None:
    with _lock:
        for run_id in [r for r, w in _workers.items() if not w.is_alive()]:
            del _workers[run_id]
        assert worker.run_id is not None
        _workers[worker.run_id] = worker


def start_research(question: str, config: ResearchConfig, settings: Settings | None = None) -> str:
    """Start a new run in the background and return its id."""
    researcher = Researcher(config, settings=settings or Settings())
    worker = RunWorker(lambda stop: researcher.stream(question, stop=stop), "ttdr-run")
    return worker.start()


def can_resume() -> bool:
    return hasattr(Researcher, "stream_resume")


def resume_research(
    run_id: str,
    config: ResearchConfig,
    settings: Settings | None = None,
    *,
    plan: Plan | None = None,
) -> str:
    """Continue an interrupted run in the background from where it stopped; a run waiting
    for its plan review goes on with `plan` (None: the plan it waits with)."""
    researcher = Researcher(config, settings=settings or Settings())
    worker = RunWorker(
        lambda stop: researcher.stream_resume(run_id, plan=plan, stop=stop), "ttdr-resume"
    )
    return worker.start()


def worker_for(run_id: str) -> RunWorker | None:
    """The live worker of a run started by this server process, if any."""
    with _lock:
        worker = _workers.get(run_id)
    return worker if worker is not None and worker.is_alive() else None


def active_run_ids() -> list[str]:
    with _lock:
        return [run_id for run_id, worker in _workers.items() if worker.is_alive()]


def request_stop(run_id: str) -> bool:
    """Ask a run to stop at its next event; False when no worker here runs it."""
    worker = worker_for(run_id)
    if worker is None:
        return False
    worker.stop.set()
    return True


def wait_for(run_id: str, timeout: float | None = None) -> bool:
    """Block until a run's worker has finished (tests, and shutting down cleanly)."""
    with _lock:
        worker = _workers.get(run_id)
    return worker is None or worker.join(timeout)
