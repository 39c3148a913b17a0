"""Rendering run events for a terminal: a live status line on a TTY, plain lines elsewhere.

Progress goes to stderr so that stdout carries only the report and can be piped.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from ttdr.models import EventKind, RunEvent, Stage
from ttdr.terminal import printable

KIND_STYLE = {
    EventKind.warning: "yellow",
    EventKind.error: "bold red",
    EventKind.finished: "green",
}


class ProgressView:
    """Shows stage, iteration and elapsed time; keeps a log line for each notable event."""

    def __init__(self, console: Console, iterations: int, *, quiet: bool = False) -> None:
        self.console = console
        self.iterations = iterations
        self.quiet = quiet
        self.started = time.monotonic()
        self.stage = "starting"
        self.iteration: int | None = None
        self._live: Live | None = None

    def __enter__(self) -> ProgressView:
        if self.console.is_terminal and not self.quiet:
            self._live = Live(
                self._status(), console=self.console, refresh_per_second=8, transient=True
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        if self._live is not None:
            self._live.__exit__(*exc_info)

    def show(self, event: RunEvent) -> None:
        if event.stage is not Stage.run:
            self.stage = event.stage.value
        if event.iteration is not None:
            self.iteration = event.iteration
        if self._live is not None:
            self._live.update(self._status())
        if self.quiet and event.kind not in (EventKind.warning, EventKind.error):
            return
        if event.kind is EventKind.started and event.stage is not Stage.run:
            return  # the live line already shows it; the log keeps outcomes
        self.console.print(self._line(event))

    def _line(self, event: RunEvent) -> Text:
        step = f" {event.iteration}/{self.iterations}" if event.iteration else ""
        line = Text(f"[{event.elapsed_s:7.1f}s] ", style="dim")
        line.append(f"{event.stage.value}{step}: ", style="bold")
        line.append(printable(event.message), style=KIND_STYLE.get(event.kind, ""))
        return line

    def _status(self) -> Spinner:
        step = f" · step {self.iteration}/{self.iterations}" if self.iteration else ""
        elapsed = time.monotonic() - self.started
        return Spinner("dots", Text(f"{self.stage}{step} · {elapsed:.0f}s elapsed"))
