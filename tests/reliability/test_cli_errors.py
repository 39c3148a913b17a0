"""The real `ttdr` command on bad input, unwritable output and hostile text.

Each case checks the whole contract a user sees: the exit code (2 bad input, 1 a failure), one
`Error:` line and no traceback, nothing stored that should not be and nothing lost that was,
and no raw control sequence from a document or a run reaching the terminal.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from backends.search.extract import MAX_PDF_CONTENT_BYTES
from tests.conftest import CORPUS
from tests.reliability.processes import QUESTION, fast_env, no_traceback, ttdr
from tests.reliability.test_bad_input import pdf_inflating_to
from tests.ui_fixtures import stored_run
from ttdr.api import MAX_QUESTION_CHARS
from ttdr.models import EventKind, RunStatus, Stage
from ttdr.store import Store

# ESC and BEL start and end terminal sequences (title, screen clear, hyperlinks); CSI is the
# 8-bit form of ESC [.
RAW_CONTROL = re.compile("[\x1b\x07\x9b]")


@pytest.fixture
def env(tmp_path: Path, tiny_model: Path) -> dict[str, str]:
    return fast_env(tmp_path / "ttdr-home", tiny_model)


def history(env: dict[str, str]) -> Store:
    return Store(Path(env["TTDR_HOME"]) / "ttdr.db")


def error_line(result) -> str:
    """The one line a failed command ends with; nothing after it, no traceback before it."""
    assert no_traceback(result), result.stderr[-3000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert lines and lines[-1].startswith("Error:"), result.stderr[-3000:]
    return lines[-1]


# -- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "says"),
    [("\x01\x1b\x07 \t\x7f", "empty"), ("x" * (MAX_QUESTION_CHARS + 1), "--docs")],
    ids=["controls only", "over the cap"],  # argv cannot carry NUL: the API's tests have it
)
def test_a_question_that_says_nothing_or_too_much_is_refused_before_it_is_stored(
    env, question: str, says: str
) -> None:
    result = ttdr(["research", question, "--docs", str(CORPUS)], env)
    assert result.returncode == 2
    assert says in error_line(result)
    assert history(env).list_runs() == []


def test_a_run_id_of_undecodable_bytes_is_simply_not_found(env) -> None:
    store = history(env)
    stored_run(store)
    result = ttdr(["history", "show", "\udcff\udcfe"], env)  # argv bytes ff fe
    assert result.returncode == 2 and "no run with id" in error_line(result)


@pytest.mark.parametrize(
    "setting",
    ["TTDR_ITERATIONS=many", "TTDR_ITERATIONS=999", "TTDR_SEARCH=gopher", "TTDR_DTYPE=fp8"],
)
def test_a_bad_setting_is_one_line_naming_it(env, setting: str) -> None:
    name, value = setting.split("=")
    result = ttdr(["research", QUESTION, "--docs", str(CORPUS)], env | {name: value})
    assert result.returncode == 2
    line = error_line(result)
    assert name in line or name.removeprefix("TTDR_").lower() in line
    assert history(env).list_runs() == []


def test_when_every_docs_file_is_skipped_the_run_says_why_and_keeps_the_reasons(
    env, tmp_path: Path
) -> None:
    folder = tmp_path / "unreadable"
    folder.mkdir()
    (folder / "noise.pdf").write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 40)
    (folder / "bomb.pdf").write_bytes(pdf_inflating_to(2 * MAX_PDF_CONTENT_BYTES))
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02" * 100)
    (folder / "empty.md").write_text("   \n")
    result = ttdr(["research", QUESTION, "--search", "local", "--docs", str(folder)], env)

    assert result.returncode == 1
    error_line(result)  # local search has nothing to search
    for name, reason in [
        ("noise.pdf", "unreadable PDF"),
        ("bomb.pdf", "too large"),
        ("binary.txt", "binary content"),
        ("empty.md", "empty page"),
    ]:
        assert re.search(rf"Skipped file://\S*/{name}: [^\n]*{reason}", result.stderr), name
    assert "None of the 4 file(s)" in result.stderr
    (run,) = history(env).list_runs()
    assert run.status is RunStatus.failed
    skipped = [
        e for e in history(env).events(run.id) if e.kind is EventKind.warning and "url" in e.data
    ]
    assert {Path(e.data["url"]).name for e in skipped} == {
        "noise.pdf",
        "bomb.pdf",
        "binary.txt",
        "empty.md",
    }
    assert all(e.stage is Stage.search and e.data["reason"] for e in skipped)


# -- output that cannot be written ---------------------------------------------------------


@pytest.mark.parametrize("target", ["/nonexistent/report.html", "{folder}", "/dev/full"])
def test_exporting_to_a_place_that_cannot_take_it_is_one_line(env, tmp_path, target) -> None:
    run_id = stored_run(history(env))
    out = target.replace("{folder}", str(tmp_path))
    result = ttdr(["history", "export", run_id, "--format", "html", "--out", out], env)
    assert result.returncode in (1, 2)
    assert out in error_line(result)
    assert result.stdout == ""


def test_a_report_that_cannot_be_written_leaves_the_run_done_and_says_so(env) -> None:
    result = ttdr(
        ["research", QUESTION, "-n", "1", "--docs", str(CORPUS), "--out", "/dev/full"], env
    )
    assert result.returncode == 1
    line = error_line(result)
    assert "/dev/full" in line and "failed" not in line
    (run,) = history(env).list_runs()
    assert run.status is RunStatus.done  # the history and the message agree
    assert history(env).report(run.id) is not None


# -- hostile text --------------------------------------------------------------------------

ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b]8;;https://evil.example\x07"


def test_text_from_documents_and_runs_reaches_the_terminal_without_control_sequences(
    env, tmp_path: Path
) -> None:
    docs = tmp_path / "hostile"
    docs.mkdir()
    (docs / "tides.md").write_text(f"# Tides {ESCAPES}\n\nThe tides {ESCAPES} follow the moon.\n")
    run_id = stored_run(
        history(env),
        question=f"Why {ESCAPES} tides?",
        drafts=[f"## Causes\n\nThe moon {ESCAPES} pulls."],
        source_title=f"Tides {ESCAPES}",
    )
    assert ttdr(["index", "add", str(docs)], env).returncode == 0
    for args in (
        ["index", "search", "tides moon"],
        ["index", "list"],
        ["history", "list"],
        ["history", "show", run_id],
    ):
        result = ttdr(args, env)
        assert result.returncode == 0, (args, result.stderr[-2000:])
        assert "tides" in (result.stdout + result.stderr).lower(), args
        assert not RAW_CONTROL.search(result.stdout + result.stderr), (args, result.stdout)
