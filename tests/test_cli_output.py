"""What the `ttdr` command writes, and where: output files that cannot be written get one
line (checked before a run starts, or the report falls back to stdout after it), text from
documents, models and the history reaches the terminal without escape sequences, a resumed
run counts its own steps, and `ttdr ui` serves the app."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import CORPUS
from ttdr.cli import app
from ttdr.models import Report, ResearchConfig, RunStatus
from ttdr.store import PromptStore, Store

QUESTION = "Why does the ocean have tides?"
# Retitles the terminal window, clears the screen, and a C1 control (CSI) on its own.
ESCAPES = "\x1b]0;pwned\x07", "\x1b[2J", "\x9b31m"


def ttdr(home: Path, *args: str) -> subprocess.CompletedProcess:
    """The real command in its own interpreter, so what a user sees is what is checked."""
    return subprocess.run(
        [sys.executable, "-m", "ttdr.cli", *args],
        env={**os.environ, "TTDR_HOME": str(home), "TTDR_SECTION_TOKENS": "12"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_error_line(result: subprocess.CompletedProcess, code: int) -> str:
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("Error: ")
    return line


def a_done_run(home: Path, question: str = "q", body: str = "# q\n\nText.\n") -> str:
    store = Store(home / "ttdr.db")
    run_id = store.create_run(question, ResearchConfig(model="m"))
    store.save_report(Report(run_id=run_id, question=question, body=body, references=[]))
    store.set_status(run_id, RunStatus.done)
    return run_id


# -- output files ------------------------------------------------------------------------------


def test_export_to_a_missing_folder_or_a_folder_is_one_line_and_exit_2(
    home: Path, tmp_path: Path
) -> None:
    run_id = a_done_run(home)
    missing = one_error_line(
        ttdr(home, "history", "export", run_id, "--out", "/nonexistent/x.html"), 2
    )
    assert "the folder /nonexistent does not exist" in missing
    folder = one_error_line(ttdr(home, "history", "export", run_id, "--out", str(tmp_path)), 2)
    assert f"{tmp_path} is a folder" in folder
    assert list(tmp_path.iterdir()) == [home.parent / "ttdr-home"]  # nothing written there


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_export_to_a_full_disk_is_one_line_and_exit_1(home: Path) -> None:
    run_id = a_done_run(home)
    line = one_error_line(ttdr(home, "history", "export", run_id, "--out", "/dev/full"), 1)
    assert "cannot write /dev/full" in line and "No space left on device" in line


def test_research_to_a_missing_folder_is_refused_before_the_run(home: Path) -> None:
    result = ttdr(home, "research", QUESTION, "--out", "/nonexistent/x.md")
    line = one_error_line(result, 2)
    assert "the folder /nonexistent does not exist" in line
    assert not (home / "ttdr.db").exists() or Store(home / "ttdr.db").list_runs() == []


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full on this system")
def test_a_report_that_cannot_be_written_after_the_run_goes_to_stdout(
    home: Path, tiny_model: Path
) -> None:
    result = ttdr(
        home, "research", QUESTION, "--model", str(tiny_model), "--search", "local",
        "--docs", str(CORPUS), "-n", "0", "--out", "/dev/full",
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.startswith(f"# {QUESTION}") and "## References" in result.stdout
    (run,) = Store(home / "ttdr.db").list_runs()
    assert run.status is RunStatus.done
    assert "No space left on device" in result.stderr
    assert f"run {run.id} is saved as done" in result.stderr
    assert "saved as failed" not in result.stderr


def test_an_export_that_fails_leaves_the_earlier_file_whole(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while the new file is written (injected at the last step, the rename)."""
    run_id = a_done_run(home, body="# q\n\nThe new report.\n")
    out = tmp_path / "report.md"
    out.write_text("the earlier report\n")

    def disk_full(*_args) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    result = CliRunner().invoke(app, ["history", "export", run_id, "--out", str(out)])

    assert result.exit_code == 1 and "No space left on device" in result.stderr
    assert out.read_text() == "the earlier report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.md", "ttdr-home"]


def test_eval_refuses_an_unusable_out_folder_and_baseline_before_researching(
    home: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "q.jsonl"
    questions.write_text('{"question": "Why do tides happen?"}\n')
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    runner = CliRunner()

    into_a_file = runner.invoke(app, ["eval", str(questions), "--out", str(a_file / "x")])
    assert into_a_file.exit_code == 2 and "is not a folder" in into_a_file.stderr
    baseline = runner.invoke(
        app, ["eval", str(questions), "--out", str(tmp_path / "e"), "--compare", str(a_file)]
    )
    assert baseline.exit_code == 1 and "cannot read the --compare file" in baseline.stderr
    assert not (home / "ttdr.db").exists() or Store(home / "ttdr.db").list_runs() == []
    assert not (tmp_path / "e").exists()


# -- terminal escapes --------------------------------------------------------------------------


def assert_no_escapes(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stderr
    for stream in (result.stdout, result.stderr):
        assert "\x1b" not in stream and "\x07" not in stream and "\x9b" not in stream


def test_indexed_text_with_escape_sequences_reaches_the_terminal_without_them(
    home: Path, tmp_path: Path
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    page = docs / f"tides{ESCAPES[1]}.md"
    page.write_text(
        f"# Tides{ESCAPES[0]} explained\n\nSpring tides{ESCAPES[1]} happen when the sun and "
        f"the moon line up, and neap tides when they pull at right angles.{ESCAPES[2]}\n"
    )
    added = ttdr(home, "index", "add", str(docs))
    assert_no_escapes(added)
    assert "1 added" in added.stderr

    from ttdr.api import open_index
    from ttdr.config import Settings

    (passage,) = open_index(Settings()).search("spring tides moon", 1)
    assert ESCAPES[1] in passage.text  # the index keeps the text; printing must clean it

    found = ttdr(home, "index", "search", "spring tides moon", "-k", "1")
    assert_no_escapes(found)
    assert "Tides]0;pwned explained" not in found.stdout and "Tides explained" in found.stdout
    assert "Spring tides happen when the sun and the moon line up" in found.stdout
    assert_no_escapes(ttdr(home, "index", "list"))


def test_history_and_prompts_print_stored_text_without_escape_sequences(home: Path) -> None:
    question = f"Why{ESCAPES[0]} tides?{ESCAPES[1]}"
    run_id = a_done_run(home, question, body=f"# Tides\n\nThe moon{ESCAPES[1]} pulls.\n")
    store = Store(home / "ttdr.db")
    store.set_status(run_id, RunStatus.failed, f"boom{ESCAPES[0]}")
    PromptStore(store).add("plan", f"Plan it{ESCAPES[1]} well.", note=f"n{ESCAPES[0]}")

    listing = ttdr(home, "history", "list")
    assert_no_escapes(listing)
    assert "Why tides?" in listing.stdout
    shown = ttdr(home, "history", "show", run_id)
    assert_no_escapes(shown)
    assert "The moon pulls." in shown.stdout and "boom" in shown.stderr
    assert_no_escapes(ttdr(home, "prompts", "list"))
    prompt = ttdr(home, "prompts", "show", "plan")
    assert_no_escapes(prompt)
    assert "Plan it well." in prompt.stdout
    assert_no_escapes(ttdr(home, "history", "export", run_id))


# -- resuming ----------------------------------------------------------------------------------


def test_a_resumed_run_counts_the_steps_it_was_started_with(
    home: Path, tiny_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started with one step, resumed where the default is three: progress says 1/1."""
    monkeypatch.setenv("TTDR_SECTION_TOKENS", "12")
    config = ResearchConfig(
        model=str(tiny_model), search="local", docs=[CORPUS], iterations=1, section_tokens=12
    )
    store = Store(home / "ttdr.db")
    run_id = store.create_run(QUESTION, config)
    store.set_status(run_id, RunStatus.interrupted, "interrupted by SIGTERM")

    result = CliRunner().invoke(app, ["research", "--resume", run_id])

    assert result.exit_code == 0, result.output
    assert "question 1/1:" in result.stderr and "revise 1/1:" in result.stderr
    assert "/3" not in result.stderr
    assert store.get_run(run_id).status is RunStatus.done


# -- the UI ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_ui_command_serves_the_app_and_stops_on_sigterm(home: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ttdr.cli", "ui", "--port", str(port)],
        env={**os.environ, "TTDR_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.5)
        assert process.poll() is None, process.stderr.read() if process.stderr else ""
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert f"ttdr UI on http://127.0.0.1:{port}" in stderr
    assert "Traceback" not in stderr
