"""The `ttdr` command end to end: research, history, export, index, models, bad input."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import CORPUS
from ttdr import __version__
from ttdr.cli import app
from ttdr.models import Report, ResearchConfig, RunStatus
from ttdr.store import Store

QUESTION = "Why does the ocean have tides?"
EXAMPLE_CORPUS = Path(__file__).parents[1] / "examples" / "corpus"


@pytest.fixture
def cli(home: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TTDR_SECTION_TOKENS", "12")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, [str(a) for a in args])


def store(home: Path) -> Store:
    return Store(home / "ttdr.db")


def test_version(cli) -> None:
    result = cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"ttdr {__version__}"


def test_research_prints_the_report_and_history_keeps_it(cli, home, tiny_model, tmp_path) -> None:
    result = cli("research", QUESTION, "--model", tiny_model, "--docs", CORPUS, "-n", 1)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"# {QUESTION}")
    assert "## References" in result.stdout
    # auto mode with --docs: the run searches the documents it was given, and says so
    assert "Searching only the documents given with --docs" in result.stderr
    assert "searched the local index instead" not in result.stderr
    for stage in ("plan:", "draft:", "question 1/1:", "search 1/1:", "answer 1/1:", "revise 1/1:"):
        assert stage in result.stderr
    (run,) = store(home).list_runs()
    assert run.status is RunStatus.done and run.drafts == 2

    listing = cli("history", "list")
    assert listing.exit_code == 0 and run.id in listing.stdout

    shown = cli("history", "show", run.id[:6])
    assert shown.exit_code == 0 and shown.stdout == result.stdout

    exported = cli("history", "export", run.id, "--format", "json")
    assert json.loads(exported.stdout)["id"] == run.id

    html_file = tmp_path / "report.html"
    assert cli("history", "export", run.id, "--format", "html", "--out", html_file).exit_code == 0
    assert html_file.read_text().startswith("<!doctype html>")

    deleted = cli("history", "delete", run.id, "--yes")
    assert deleted.exit_code == 0 and store(home).list_runs() == []


def test_research_can_write_json_to_a_file(cli, home, tiny_model, tmp_path) -> None:
    out = tmp_path / "report.json"
    result = cli(
        "research", QUESTION, "--model", tiny_model, "--search", "local", "--docs", CORPUS,
        "-n", 0, "--format", "json", "--out", out,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(out.read_text())
    assert data["status"] == "done" and data["report"]["question"] == QUESTION
    assert result.stdout == ""


def test_html_export_never_renders_model_or_page_markup(cli, home) -> None:
    db = store(home)
    run_id = db.create_run("q", ResearchConfig())
    markup = "<script>alert(1)</script> <img src=x onerror=alert(2)>"
    body = f"# q\n\n{markup}\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    db.save_report(Report(run_id=run_id, question="q", body=body, references=[]))
    page = cli("history", "export", run_id, "--format", "html").stdout
    assert "<script>" not in page and "<img" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<table>" in page


@pytest.mark.parametrize("question", ["", "   "])
def test_an_empty_question_exits_2_and_stores_nothing(cli, home, question) -> None:
    result = cli("research", question)
    assert result.exit_code == 2
    assert "The question is empty" in result.stderr
    assert store(home).list_runs() == []


def test_a_missing_docs_path_exits_2_and_stores_nothing(cli, home, tmp_path) -> None:
    result = cli("research", QUESTION, "--docs", tmp_path / "missing")
    assert result.exit_code == 2
    assert "Docs path does not exist" in result.stderr and "missing" in result.stderr
    assert store(home).list_runs() == []


@pytest.mark.parametrize("command", ["show", "export", "delete"])
def test_an_unknown_run_id_exits_2_with_a_hint(cli, command) -> None:
    result = cli("history", command, "feedbeef")
    assert result.exit_code == 2
    assert "no run with id 'feedbeef'" in result.stderr and "ttdr history list" in result.stderr


@pytest.mark.parametrize("mode", ["web", "auto"])
def test_offline_with_nothing_indexed_fails_fast_and_says_why(cli, home, tiny_model, mode) -> None:
    result = cli("research", QUESTION, "--model", tiny_model, "--search", mode)
    assert result.exit_code == 1
    assert "ttdr index add" in result.stderr
    (run,) = store(home).list_runs()  # the attempt is on record, with its reason
    assert run.status is RunStatus.failed and "RetrievalUnavailableError" in run.error
    assert run.drafts == 0


def test_history_list_on_a_fresh_install_says_how_to_start(cli) -> None:
    result = cli("history", "list")
    assert result.exit_code == 0 and "No runs yet" in result.stderr


def test_index_add_search_and_list(cli) -> None:
    added = cli("index", "add", CORPUS)
    assert added.exit_code == 0 and "4 added" in added.stderr
    again = cli("index", "add", CORPUS)
    assert "0 added, 0 updated, 4 unchanged" in again.stderr
    found = cli("index", "search", "spring and neap tides", "-k", "2")
    assert found.exit_code == 0 and "1. " in found.stdout and "tides.html" in found.stdout
    assert "sourdough.txt" in cli("index", "list").stdout


def test_index_search_on_an_empty_index_says_what_to_do(cli) -> None:
    result = cli("index", "search", "anything")
    assert result.exit_code == 1 and "ttdr index add" in result.stderr


def test_models_lists_the_default_and_says_it_is_autoregressive(cli) -> None:
    result = cli("models")
    assert result.exit_code == 0
    assert "smollm2-135m (default)" in result.stdout and "autoregressive" in result.stdout


def count_drafts(db: Path) -> int:
    """Drafts written so far by another process; 0 while it is still creating the file."""
    try:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT count(*) FROM drafts").fetchone()[0]
    except sqlite3.OperationalError:  # no file or no table yet
        return 0


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_is_marked_and_keeps_its_drafts(home, tiny_model, sig) -> None:
    """A real process, interrupted mid-loop the way a user (Ctrl-C) or a supervisor would.

    Over the example corpus: the loop ends at a step that reads no new passage, and the
    fixture corpus is read through within two steps, before the signal could arrive."""
    env = dict(os.environ, TTDR_HOME=str(home), TTDR_SECTION_TOKENS="48")
    command = [sys.executable, "-m", "ttdr.cli", "research", QUESTION, "--model", str(tiny_model)]
    command += ["--search", "local", "--docs", str(EXAMPLE_CORPUS), "-n", "50"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    db = home / "ttdr.db"
    deadline = time.monotonic() + 300  # generous: a busy CI machine is slow, a pass is not
    drafts_seen = 0
    while drafts_seen < 2 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
        drafts_seen = count_drafts(db)
    assert drafts_seen >= 2, "the run never reached its second draft"
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=120)

    assert process.returncode == 130
    assert "Interrupted" in stderr and "saved as interrupted" in stderr
    (run,) = store(home).list_runs()
    assert run.status is RunStatus.interrupted and run.finished_at is not None
    assert run.drafts >= drafts_seen
    detail = store(home).get_run(run.id)
    assert detail.drafts_list[0].iteration == 0 and detail.plan is not None


def test_models_info_shows_a_family_s_decode_defaults(cli, tiny_model) -> None:
    sdar = cli("models", "info", "sdar-4b-chat")
    assert sdar.exit_code == 0
    for expected in ("block_causal", "151669", "block diffusion: block 4", "SDAR-4B-Chat"):
        assert expected in sdar.stdout
    folder = cli("models", "info", tiny_model)
    assert folder.exit_code == 0 and "llama" in folder.stdout and "autoregressive" in folder.stdout


def test_models_info_on_an_unknown_name_is_a_clear_error(cli) -> None:
    result = cli("models", "info", "no-such-model")  # a usage error: exit 2 (issue 15)
    assert result.exit_code == 2 and "unknown model" in result.stderr and "sdar" in result.stderr


def test_bench_engine_prints_json_for_three_decoding_modes(cli) -> None:
    result = cli("bench", "engine", "--tiny", "sdar", "--tokens", "8")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report["modes"]) == {"autoregressive", "naive_diffusion", "block_parallel_cached"}
    for mode in report["modes"].values():
        assert mode["tokens"] == 3 * 8 and mode["forward_passes"] > 0
    assert report["tokens_per_s_vs_autoregressive"]["autoregressive"] == 1.0


def test_bench_retrieval_prints_json_at_a_small_scale(cli) -> None:
    result = cli("bench", "retrieval", "--pages", "12", "--local-docs", "12")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["fetch"]["pages"] == 12 and report["fetch"]["failures"] == 0
    assert report["local_index"]["documents"] == 12


def test_the_ui_command_is_there(cli) -> None:
    result = cli("ui", "--help")
    assert result.exit_code == 0 and "--port" in result.stdout
