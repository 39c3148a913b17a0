"""The conventions a user of any command line expects, each checked by running the command:
`--flag/--no-flag` booleans, help that shows defaults and the TTDR_* variable behind an
option, exit code 2 for every usage error, `--json` and plain text when piped, shell
completion, `ttdr ui --open`, and page fetches that go through the environment's proxy (with
the address guard still in force)."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.core import TyperOption

from backends.search.fetch import Fetcher, FetchSettings, Page, environment_proxies
from backends.search.loopback import LoopbackSite, Route
from backends.search.types import SkippedSource
from tests.conftest import CORPUS
from ttdr.cli import app
from ttdr.models import Report, ResearchConfig, RunStatus
from ttdr.store import PromptStore, Store

TTDR_SCRIPT = Path(sys.executable).with_name("ttdr")  # the console script pip installed


def ttdr(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The real command in its own interpreter, help laid out wide so lines do not wrap."""
    return subprocess.run(
        [sys.executable, "-m", "ttdr.cli", *args],
        env={**os.environ, "TTDR_HOME": str(home), "COLUMNS": "200", **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def one_error_line(result: subprocess.CompletedProcess, code: int = 2) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    return line


def a_run(home: Path, question: str = "How do tides work?", status=RunStatus.done) -> str:
    store = Store(home / "ttdr.db")
    run_id = store.create_run(question, ResearchConfig(model="m"))
    store.save_report(
        Report(run_id=run_id, question=question, body="# T\n\nText.\n", references=[])
    )
    store.set_status(run_id, status)
    return run_id


# -- flags and help ----------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["research", "eval"])
def test_boolean_flags_read_flag_slash_no_flag(home: Path, command: str) -> None:
    result = ttdr(home, command, "--help")
    assert result.returncode == 0
    assert "--no-no-" not in result.stdout
    for flag in ("--denoise", "--no-denoise", "--evolve", "--no-evolve"):
        assert flag in result.stdout


def test_research_help_shows_each_setting_s_default_and_variable(home: Path) -> None:
    help_text = ttdr(home, "research", "--help").stdout
    for expected in (
        "[default: 3; TTDR_ITERATIONS]",
        "[default: auto; TTDR_SEARCH]",
        "[default: smollm2-135m; TTDR_MODEL]",
        "[default: medium; TTDR_LENGTH]",
        "[default: strict; TTDR_GROUNDING]",
        "[default: md]",
        "[default: denoise]",
    ):
        assert expected in help_text, expected


def test_a_variable_in_the_environment_is_read_by_settings_not_by_the_flag(
    home: Path, tiny_model: Path
) -> None:
    """The help names TTDR_ITERATIONS, but the option does not read it (Settings does): a bad
    value is Settings' one line naming the variable, not the flag parser's message."""
    result = ttdr(home, "research", "q", "--model", str(tiny_model), TTDR_ITERATIONS="many")
    line = one_error_line(result)
    assert line.startswith("Error: TTDR_ITERATIONS='many'") and "--iterations" not in line


def cli_command(*path: str) -> typer.core.TyperCommand:
    command = typer.main.get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return command


@pytest.mark.parametrize("command", [("eval",), ("research",), ("config", "init")])
def test_every_option_has_help(command: tuple[str, ...]) -> None:
    options = [p for p in cli_command(*command).params if isinstance(p, TyperOption)]
    assert options
    assert [o.name for o in options if not (o.help or "").strip()] == []


# -- exit codes --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "env", "says"),
    [
        (["models", "info", "nope"], {}, "unknown model 'nope'"),
        (["history", "show", "nope"], {}, "no run with id"),
        (["prompts", "show", "nope"], {}, "unknown component"),
        (["research", "q", "--format", "xml"], {}, "--format must be md, json, html, pdf or docx"),
        (["research", "q", "--out", "/no/such/folder/r.md"], {}, "does not exist"),
        (["history", "list"], {"TTDR_SEARCH": "bogus"}, "TTDR_SEARCH='bogus'"),
        (["research", "q"], {"TTDR_ITERATIONS": "99"}, "TTDR_ITERATIONS=99"),
    ],
)
def test_every_usage_error_is_one_line_and_exit_2(
    home: Path, args: list[str], env: dict[str, str], says: str
) -> None:
    line = one_error_line(ttdr(home, *args, **env))
    assert line.startswith("Error: ") and says in line


def test_an_unknown_option_exits_2_too(home: Path) -> None:
    result = ttdr(home, "history", "list", "--colour")
    assert result.returncode == 2 and "No such option" in result.stderr


# -- history list filters ----------------------------------------------------------------------


def test_history_list_with_a_status_that_no_run_has_says_so(home: Path) -> None:
    a_run(home)
    result = ttdr(home, "history", "list", "--status", "failed")
    assert result.returncode == 0 and result.stdout == ""
    assert "No failed runs" in result.stderr and "No runs yet" not in result.stderr
    fresh = ttdr(home.with_name("fresh"), "history", "list", "--status", "failed")
    assert "No runs yet" in fresh.stderr


# -- --json and plain text ---------------------------------------------------------------------


def test_history_list_and_show_print_json(home: Path) -> None:
    done, failed = a_run(home, "first"), a_run(home, "second", RunStatus.failed)
    listed = json.loads(ttdr(home, "history", "list", "--json").stdout)
    assert {(r["id"], r["status"]) for r in listed} == {(done, "done"), (failed, "failed")}
    only = json.loads(ttdr(home, "history", "list", "--status", "failed", "--json").stdout)
    assert [r["id"] for r in only] == [failed]
    shown = json.loads(ttdr(home, "history", "show", done, "--json").stdout)
    assert shown["id"] == done and shown["question"] == "first"
    assert shown["report"]["body"].startswith("# T")
    empty = ttdr(home.with_name("empty"), "history", "list", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout) == []


def test_models_print_json(home: Path) -> None:
    for args in (["models", "--json"], ["models", "list", "--json"]):
        entries = json.loads(ttdr(home, *args).stdout)
        default = [e for e in entries if e["default"]]
        assert [e["name"] for e in default] == ["smollm2-135m"]
        assert {"family", "decoding", "present", "folder"} <= set(default[0])
    info = json.loads(ttdr(home, "models", "info", "sdar-4b-chat", "--json").stdout)
    assert info["mask id"] == "151669" and info["attention"] == "block_causal"


def test_index_list_and_search_print_json(home: Path) -> None:
    assert ttdr(home, "index", "add", str(CORPUS)).returncode == 0
    documents = json.loads(ttdr(home, "index", "list", "--json").stdout)
    assert {Path(d["path"]).name for d in documents} >= {"tides.html", "sourdough.txt"}
    found = json.loads(ttdr(home, "index", "search", "spring and neap tides", "--json").stdout)
    assert found and "tides.html" in found[0]["url"] and found[0]["text"]
    assert all({"url", "title", "text", "score"} <= set(p) for p in found)


def test_prompts_list_prints_json(home: Path) -> None:
    assert json.loads(ttdr(home, "prompts", "list", "--json").stdout) == []
    PromptStore(Store(home / "ttdr.db")).add("plan", "Plan the report.", note="seed")
    (version,) = json.loads(ttdr(home, "prompts", "list", "--json").stdout)
    assert version["component"] == "plan" and version["text"] == "Plan the report."


def test_json_keeps_control_characters_but_escaped(home: Path) -> None:
    run_id = a_run(home, "q \x1b]0;pwned\x07 \x9b31m \u202e")
    out = ttdr(home, "history", "list", "--json").stdout
    assert "\x1b" not in out and "\x9b" not in out and "\u202e" not in out
    assert json.loads(out)[0]["question"] == "q \x1b]0;pwned\x07 \x9b31m \u202e"
    assert json.loads(out)[0]["id"] == run_id


def test_tables_are_tab_separated_text_when_piped(home: Path) -> None:
    run_id = a_run(home, "a question\twith a tab\nand a line break")
    lines = ttdr(home, "history", "list").stdout.splitlines()
    assert lines[0].split("\t") == [
        "id",
        "status",
        "started (UTC)",
        "drafts",
        "sources",
        "question",
    ]
    (row,) = (line.split("\t") for line in lines[1:])
    assert row[0] == run_id and row[1] == "done"
    assert row[5] == "a question with a tab and a line break"
    models = ttdr(home, "models").stdout
    assert "│" not in models and "┃" not in models and "\tblock_causal" not in models
    assert any(line.startswith("smollm2-135m (default)\t") for line in models.splitlines())


def on_a_terminal(home: Path, *args: str) -> str:
    """What the command prints to a terminal (a pseudo-terminal as its stdout)."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "ttdr.cli", *args],
        env={**os.environ, "TTDR_HOME": str(home), "COLUMNS": "160", "TERM": "xterm"},
        stdout=follower,
        stderr=subprocess.DEVNULL,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # the follower side closed: the process is done
            break
        if not data:
            break
        chunks.append(data)
    process.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode("utf-8", "replace")


def test_tables_are_drawn_on_a_terminal(home: Path) -> None:
    run_id = a_run(home)
    shown = on_a_terminal(home, "history", "list")
    assert run_id in shown and ("┃" in shown or "│" in shown) and "\t" not in shown


# -- shell completion --------------------------------------------------------------------------


def test_install_completion_works_in_bash(tmp_path: Path) -> None:
    assert TTDR_SCRIPT.is_file(), "the package is installed (pip install -e .)"
    home = tmp_path / "user"
    home.mkdir()
    env = {**os.environ, "HOME": str(home), "SHELL": "/bin/bash"}
    env["PATH"] = f"{TTDR_SCRIPT.parent}{os.pathsep}{env['PATH']}"
    # Typed in a bash, as a user would: Typer asks the process tree (shellingham) which shell
    # it runs in. `; exit $?` keeps bash from exec'ing the command in its own place.
    installed = subprocess.run(
        ["bash", "-c", "ttdr --install-completion; exit $?"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert installed.returncode == 0, installed.stderr
    assert "completion installed" in installed.stdout + installed.stderr
    assert ".bash_completions/ttdr.sh" in (home / ".bashrc").read_text()
    # The installed script, sourced by a real bash, completes a command and a flag.
    probe = (
        "source ~/.bash_completions/ttdr.sh; "
        "COMP_WORDS=(ttdr hist); COMP_CWORD=1; _ttdr_completion ttdr; echo ${COMPREPLY[@]}; "
        "COMP_WORDS=(ttdr research --no-d); COMP_CWORD=2; _ttdr_completion ttdr; "
        "echo ${COMPREPLY[@]}"
    )
    completed = subprocess.run(
        ["bash", "-c", probe], env=env, capture_output=True, text=True, timeout=60
    )
    assert completed.stdout.split("\n")[:2] == ["history", "--no-denoise"], completed.stderr


def test_help_still_lists_the_commands_and_completion_options(home: Path) -> None:
    result = ttdr(home, "--help")
    assert result.returncode == 0
    for expected in ("--install-completion", "--show-completion", "research", "config"):
        assert expected in result.stdout


# -- ttdr ui --open ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_ui_open_opens_the_browser_and_prints_the_address_once(home: Path, tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser.sh"  # webbrowser runs $BROWSER with the URL
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "ttdr.cli", "ui", "--port", str(port), "--open"],
        env={**os.environ, "TTDR_HOME": str(home), "BROWSER": str(browser)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None and not opened.exists():
            time.sleep(0.5)
        time.sleep(1.0)  # anything streamlit would print after serving has been printed
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    address = f"127.0.0.1:{port}"
    assert opened.read_text().split() == [f"http://{address}"], stderr
    assert (stdout + stderr).count(address) == 1, stdout + stderr
    assert "Traceback" not in stderr


# -- proxies -----------------------------------------------------------------------------------

PAGE = b"<html><head><title>Tides</title></head><body>" + b"<p>The moon pulls the sea.</p>" * 20
PUBLIC = {"example.test": ["93.184.216.34"], "intranet.test": ["10.0.0.5"]}


def resolver(host: str, port: int) -> list[str]:
    return PUBLIC.get(host, ["127.0.0.1"])


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No proxy variable from the machine running the tests (lower case ones win over upper)."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def proxy(no_proxy_env: None) -> Iterator[LoopbackSite]:
    """A forward proxy on 127.0.0.1: it answers absolute-form requests (`GET http://...`)."""
    routes = {"http://example.test/page": Route(200, {"Content-Type": "text/html"}, PAGE)}
    with LoopbackSite(routes) as site:  # type: ignore[arg-type]
        yield site


def fetch(url: str, **settings) -> Page | SkippedSource:
    options = {"connect_timeout_s": 1.0, "total_timeout_s": 3.0, "retries": 0, **settings}

    async def go() -> Page | SkippedSource:
        fetcher = Fetcher(FetchSettings(**options), resolver=resolver)
        try:
            return await fetcher.read(url)
        finally:
            await fetcher.aclose()

    return asyncio.run(go())


def test_pages_go_through_http_proxy_by_name(proxy: LoopbackSite, monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.base)
    page = fetch("http://example.test/page")
    assert isinstance(page, Page) and "moon pulls the sea" in page.text
    assert [r.path for r in proxy.requests] == [
        "http://example.test/robots.txt",
        "http://example.test/page",
    ]
    assert {r.host for r in proxy.requests} == {"example.test"}


def test_the_guard_still_refuses_a_private_host_before_the_proxy_sees_it(
    proxy: LoopbackSite, monkeypatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.base)
    refused = fetch("http://intranet.test/admin")
    assert isinstance(refused, SkippedSource) and refused.category == "address"
    assert "10.0.0.5 (private network)" in refused.reason
    assert proxy.requests == []


def test_loopback_pages_are_never_sent_to_a_proxy(proxy: LoopbackSite, monkeypatch) -> None:
    with LoopbackSite({"/local": Route(200, {"Content-Type": "text/html"}, PAGE)}) as own:
        monkeypatch.setenv("HTTP_PROXY", proxy.base)
        page = fetch(own.url("/local", host="local.test"), allow_loopback=True)
        assert isinstance(page, Page) and own.hits("/local") == 1
    assert proxy.requests == []


def test_trust_env_off_ignores_the_proxy(proxy: LoopbackSite, monkeypatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.base)
    direct = fetch("http://example.test/page", trust_env=False)  # no route off this machine
    assert isinstance(direct, SkippedSource)
    assert proxy.requests == []


class ConnectRecorder:
    """A proxy that records the CONNECT line of each tunnel request and refuses it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                self.lines.append(conn.recv(4096).decode("latin-1").split("\r\n", 1)[0])
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")


def test_https_goes_through_https_proxy_as_a_tunnel_to_the_name(no_proxy_env, monkeypatch) -> None:
    recorder = ConnectRecorder()
    try:
        monkeypatch.setenv("HTTPS_PROXY", f"127.0.0.1:{recorder.port}")  # no scheme, as curl
        refused = fetch("https://example.test/page")
    finally:
        recorder.server.close()
    assert isinstance(refused, SkippedSource) and refused.category == "network"
    assert "CONNECT example.test:443 HTTP/1.1" in recorder.lines


def test_no_proxy_names_hosts_that_are_fetched_directly(no_proxy_env, monkeypatch) -> None:
    assert environment_proxies() is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "example.test,.internal")
    proxy_for = environment_proxies()
    assert proxy_for is not None
    assert proxy_for("https", "example.org") == "http://proxy.corp:3128"
    assert proxy_for("https", "example.test") is None
    assert proxy_for("https", "wiki.internal") is None
    assert proxy_for("http", "example.org") is None  # HTTPS_PROXY is for https only
