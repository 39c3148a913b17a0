"""Run events carry typed payloads: written validated, stored as plain JSON, read back as
models, and rows from earlier versions stay readable."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

import backends.search.types
from tests.conftest import CORPUS
from ttdr.api import Researcher
from ttdr.events import (
    PAYLOADS,
    DraftWritten,
    Judged,
    QueryFeedback,
    SearchDone,
    SkippedSource,
    payload_data,
)
from ttdr.models import EventKind, ResearchConfig, RunEvent, Stage
from ttdr.store import Store


def test_retrieval_and_the_app_share_one_skipped_source() -> None:
    assert backends.search.types.SkippedSource is SkippedSource
    # built positionally, as the fetcher and the local index do, and compared by value
    assert SkippedSource("https://x.example/a", "timed out", "timeout") == SkippedSource(
        url="https://x.example/a", reason="timed out", category="timeout"
    )


def test_a_writer_that_drifts_from_the_payload_type_fails() -> None:
    with pytest.raises(TypeError, match="no field sectons"):
        payload_data(Stage.plan, EventKind.finished, sectons=["A"])
    with pytest.raises(ValidationError):
        payload_data(Stage.revise, EventKind.finished, draft_version="second")
    with pytest.raises(TypeError, match="one DraftWritten"):
        payload_data(Stage.revise, EventKind.finished, Judged(component="plan"))
    with pytest.raises(TypeError, match="carry no payload"):
        payload_data(Stage.draft, EventKind.progress, draft_version=1)
    assert payload_data(Stage.search, EventKind.warning) == {}


def test_payloads_are_stored_as_plain_json_and_read_back_typed(tmp_path: Path) -> None:
    store = Store(tmp_path / "ttdr.db")
    run_id = store.create_run("q", ResearchConfig(model="m"))
    searched = SearchDone(
        backend="local",
        urls=["file:///a.md"],
        queries=[QueryFeedback(origin="question", query="tides", feedback=0.5)],
    )
    data = payload_data(Stage.search, EventKind.finished, searched)
    assert data == {
        "backend": "local",
        "urls": ["file:///a.md"],
        "queries": [{"origin": "question", "query": "tides", "feedback": 0.5}],
    }
    event = RunEvent(run_id=run_id, stage=Stage.search, kind=EventKind.finished, message="m")
    store.add_event(event.model_copy(update={"data": data}))

    (stored,) = store.events(run_id)
    assert stored.payload == searched
    assert RunEvent.model_validate_json(stored.model_dump_json()) == stored


def test_rows_from_earlier_versions_stay_readable(tmp_path: Path) -> None:
    """A revision event written before `new_passages` existed, one with a key nobody reads
    any more, and one whose shape no payload type has: each keeps its data."""
    store = Store(tmp_path / "ttdr.db")
    run_id = store.create_run("q", ResearchConfig(model="m"))
    rows = [
        (Stage.revise, EventKind.finished, {"draft_version": 2, "changed_sections": ["A"]}),
        (Stage.search, EventKind.warning, {"url": "u", "reason": "r", "status": 404}),
        (Stage.search, EventKind.warning, {"n": 1}),
        (Stage.run, EventKind.progress, {"anything": [1, 2]}),
    ]
    for stage, kind, data in rows:
        store.add_event(RunEvent(run_id=run_id, stage=stage, kind=kind, message="m", data=data))

    events = store.events(run_id)
    assert [e.data for e in events] == [data for _, _, data in rows]
    assert [e.payload for e in events] == [
        DraftWritten(draft_version=2, changed_sections=["A"]),
        SkippedSource("u", "r"),
        None,
        None,
    ]


def test_every_event_of_a_real_run_carries_its_stage_s_payload(settings, tiny_model) -> None:
    config = ResearchConfig(
        model=str(tiny_model), search="local", docs=[CORPUS], iterations=1, section_tokens=12
    )
    researcher = Researcher(config, settings=settings)
    run_id = researcher.run("Why does the ocean have tides?").run_id

    events = researcher.events(run_id)
    with_data = [e for e in events if e.data]
    assert {(e.stage, e.kind) for e in with_data} >= {
        (Stage.run, EventKind.started),
        (Stage.plan, EventKind.finished),
        (Stage.draft, EventKind.finished),
        (Stage.search, EventKind.finished),
        (Stage.revise, EventKind.finished),
        (Stage.report, EventKind.finished),
    }
    for event in with_data:
        assert isinstance(event.payload, PAYLOADS[event.stage, event.kind]), event
    revised = [e.payload for e in events if e.stage is Stage.revise and e.data]
    assert [p.draft_version for p in revised] == [1]
