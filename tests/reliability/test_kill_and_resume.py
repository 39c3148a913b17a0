"""SIGKILL at every stage of a run, then `ttdr research --resume`: nothing redone, nothing lost.

Two runs are killed over and over, each kill followed by a resume that is itself killed at the
next point, until a last resume finishes; a third run goes through uninterrupted. The tiny
model decodes greedily and the corpus is fixed, so the killed runs must end with exactly the
reference's drafts, Q/A pairs, sources and report, and with its events plus only what a killed
node said again when it ran a second time.

- at the boundaries: killed as each stage (plan, draft, questions, answer, revise, report)
  announced itself, after the previous one was checkpointed;
- after the writes: killed as each stage announced it had finished, its rows written but its
  checkpoint not yet, so the node runs again and must replace its rows, not add to them, and
  must find the same evidence (a rerun answer node once counted its own sources as read).

The three runs go side by side (about 1½ minutes on two cores); the tests read the outcome.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.conftest import CORPUS
from tests.reliability.processes import (
    QUESTION,
    SIGKILLED,
    Kept,
    fast_env,
    finish,
    no_traceback,
    start,
)
from ttdr.models import RunStatus, Stage

# The first event each node records, named by the stage it belongs to: the answer node
# searches before it answers.
AT_BOUNDARIES = ["plan", "draft", "question", "search", "revise", "report"]
AFTER_WRITES = ["plan", "draft", "answer", "revise", "report"]  # the question node writes none
FIRST_EVENT_OF_NODE = {"answer": "search"}
STEPS = "2"  # on the command line only: a resumed run must keep its own


@dataclass
class Chain:
    """One run killed at each of `points` in turn: what each process printed and what the
    history held after it."""

    home: Path
    points: list[str]
    kind: str
    results: list = field(default_factory=list)
    kept: list[Kept] = field(default_factory=list)

    @property
    def db(self) -> Path:
        return self.home / "ttdr.db"

    def command(self, step: int) -> list[str]:
        if step == 0:
            return ["research", QUESTION, "-n", STEPS, "--docs", str(CORPUS)]
        return ["research", "--resume", self.kept[0].run_id]

    def strike(self, step: int) -> str | None:
        return f"{self.points[step]}:{self.kind}:kill" if step < len(self.points) else None

    def said(self, step: int) -> list[tuple]:
        """The stage events that process `step` recorded, in order."""
        before = len(self.kept[step - 1].events) if step else 0
        return [e for e in self.kept[step].events[before:] if e[0] != Stage.run.value]

    def killed(self) -> list[int]:
        return list(range(len(self.points)))


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_model) -> tuple[Kept, Chain, Chain]:
    root = tmp_path_factory.mktemp("killed")
    chains = [
        Chain(root / "boundaries", AT_BOUNDARIES, "started"),
        Chain(root / "after-writes", AFTER_WRITES, "finished"),
    ]
    reference_home = root / "reference"
    reference = start(
        ["research", QUESTION, "-n", STEPS, "--docs", str(CORPUS)],
        fast_env(reference_home, tiny_model),
    )
    for step in range(len(AT_BOUNDARIES) + 1):
        going = [c for c in chains if step <= len(c.points)]
        processes = [
            start(c.command(step), fast_env(c.home, tiny_model), at=c.strike(step)) for c in going
        ]
        for chain, process in zip(going, processes, strict=True):
            chain.results.append(finish(process))
            chain.kept.append(Kept.of(chain.db))
    done = finish(reference)
    assert done.returncode == 0, done.stderr
    return Kept.of(reference_home / "ttdr.db"), *chains


def test_a_run_killed_at_each_stage_boundary_resumes_with_nothing_redone_or_lost(runs) -> None:
    reference, chain, _ = runs
    assert_killed_where_asked(chain)
    assert_nothing_lost_on_the_way(chain, reference)
    final = chain.kept[-1]
    assert_same_contents(final, reference)
    # Each killed node announced itself once more when it ran again; no finished node reran.
    again = Counter(chain.said(step)[-1] for step in chain.killed())
    assert stage_events(final) == stage_events(reference) + again


def test_a_run_killed_after_each_stage_wrote_its_rows_keeps_them_once(runs) -> None:
    reference, _, chain = runs
    assert_killed_where_asked(chain)
    assert_nothing_lost_on_the_way(chain, reference)
    final = chain.kept[-1]
    assert_same_contents(final, reference)  # rows rewritten by a rerun node are not doubled
    # The killed node ran again from its start: everything it said repeats, nothing else.
    again: Counter = Counter()
    for point, step in zip(chain.points, chain.killed(), strict=True):
        said = chain.said(step)
        first = FIRST_EVENT_OF_NODE.get(point, point)
        begin = max(i for i, e in enumerate(said) if e[:2] == (first, "started"))
        again.update(said[begin:])
    assert stage_events(final) == stage_events(reference) + again


def test_resumed_progress_counts_steps_against_the_runs_own_total(runs) -> None:
    _, *chains = runs  # every resumed process of every chain
    totals = [
        total
        for chain in chains
        for result in chain.results[1:]
        for total in re.findall(r"^\[ *[\d.]+s\] \w+ \d+/(\d+):", result.stderr, re.MULTILINE)
    ]
    assert totals, "no resumed process printed a step"
    assert set(totals) == {STEPS}


# -- checks --------------------------------------------------------------------------------


def assert_killed_where_asked(chain: Chain) -> None:
    """Every process but the last died by SIGKILL right after its chosen event; the last
    finished the run; each resumed process said so; none printed a traceback."""
    for point, step in zip(chain.points, chain.killed(), strict=True):
        result = chain.results[step]
        assert result.returncode == SIGKILLED, (point, result.returncode, result.stderr[-2000:])
        assert chain.kept[step].status is RunStatus.interrupted  # its process was seen gone
        assert chain.said(step)[-1][:2] == (point, chain.kind)
    last = chain.results[-1]
    assert last.returncode == 0, last.stderr[-3000:]
    assert all("Research resumed" in r.stderr for r in chain.results[1:])
    assert all(no_traceback(r) for r in chain.results)


def assert_nothing_lost_on_the_way(chain: Chain, reference: Kept) -> None:
    """After every kill the history holds a beginning of the reference run, and every later
    state of it extends the earlier ones: no row lost, none rewritten differently."""
    for kept in chain.kept:
        assert kept.drafts == reference.drafts[: len(kept.drafts)]
        assert kept.sources == reference.sources[: len(kept.sources)]
        assert set(kept.qa) <= set(reference.qa)
    for before, after in zip(chain.kept, chain.kept[1:], strict=False):
        assert after.events[: len(before.events)] == before.events


def assert_same_contents(final: Kept, reference: Kept) -> None:
    assert final.status is RunStatus.done
    assert final.drafts == reference.drafts and len(final.drafts) == int(STEPS) + 1
    assert final.qa == reference.qa and final.qa
    assert final.sources == reference.sources and final.sources
    assert final.report == reference.report and final.report


def stage_events(kept: Kept) -> Counter:
    """The events of the workflow's stages; the run's own (started, model loaded,
    interrupted) differ by design between a run and its resumes."""
    return Counter(e for e in kept.events if e[0] != Stage.run.value)
