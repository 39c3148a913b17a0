"""The remote backends behind the agent's protocol: a research run through a real `ttdr
serve` (the `ttdr` backend) gives the in-process report; the `openai` backend runs with one
warning; faults of a loopback stub server are retried, then end in one error naming the URL;
a server killed mid-run leaves a failed run that resumes once it is back."""

from __future__ import annotations

import contextlib
import json
import os
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from backends.llm.protocol import Editor
from backends.llm.remote import RemoteEndpoint, RemoteServerError, connect
from backends.llm.remote.client import RemoteClient
from tests.serving import TOKEN, Server, free_port
from ttdr import Researcher
from ttdr.api import prompt_versions
from ttdr.cli import app
from ttdr.config import Settings
from ttdr.errors import ModelUnavailableError, RunStopped
from ttdr.models import EventKind, ResearchConfig, RunStatus, Stage
from ttdr.store import PromptStore, Store

QUESTION = "Why does the ocean have tides?"
NO_EVOLVE = {"evolve": [], "variants": 1, "evolution_rounds": 0}
MESSAGES = [{"role": "user", "content": "hello"}]


def remote_settings(home: Path, server: Server, **more) -> Settings:
    return Settings(
        home=home,
        backend="ttdr",
        base_url=f"{server.url}/v1",
        api_key=TOKEN,
        remote_attempts=2,
        remote_backoff_s=0.05,
        **more,
    )


def warnings(events) -> list[str]:
    return [e.message for e in events if e.kind is EventKind.warning]


# -- the ttdr backend against a real server ----------------------------------------------------


def test_a_run_through_the_server_gives_the_in_process_report(
    tiny_server: Server, tiny_config: ResearchConfig, tmp_path: Path
) -> None:
    config = tiny_config.model_copy(update={"iterations": 1})
    local = Researcher(config, settings=Settings(home=tmp_path / "local"))
    local_events = list(local.stream(QUESTION))
    expected = local.get_report(local_events[-1].run_id)
    remote = Researcher(config, settings=remote_settings(tmp_path / "remote", tiny_server))
    events = list(remote.stream(QUESTION))
    report = remote.get_report(events[-1].run_id)

    assert report.body == expected.body and report.references == expected.references
    assert warnings(events) == warnings(local_events)  # no capability lost on the way
    run = remote.get_run(report.run_id)
    assert run.stats.device == f"cpu at {tiny_server.url}"
    # The engine's own figures came back with each call: the same passes as in-process.
    expected_passes = local.get_run(expected.run_id).stats.generation.forward_passes
    assert run.stats.generation.forward_passes == expected_passes > 0
    # The server's key reaches neither the history nor the checkpoints.
    for database in (tmp_path / "remote").glob("*.db*"):
        assert TOKEN.encode() not in database.read_bytes()


def test_the_ttdr_backend_is_an_editor_and_the_openai_backend_is_not(tiny_server) -> None:
    endpoint = RemoteEndpoint(tiny_server.url, api_key=TOKEN)
    full = connect("ttdr", endpoint)
    chat = connect("openai", endpoint)
    assert isinstance(full, Editor) and not isinstance(chat, Editor)
    assert full.info.family == "llama" and chat.info.name == "tiny-llama"
    reply = chat.generate(MESSAGES, 8, temperature=0.7, seed=1)
    assert reply.text == full.generate(MESSAGES, 8, temperature=0.7, seed=1).text
    assert reply.stats.tokens > 0
    stop = threading.Event()
    stop.set()
    with pytest.raises(RunStopped):
        full.generate(MESSAGES, 8, stop=stop)


def test_a_run_through_an_openai_server_says_once_what_it_lost(
    tiny_server: Server, tiny_config: ResearchConfig, home: Path, monkeypatch
) -> None:
    """`ttdr research --backend openai` against any OpenAI-compatible server (here a `ttdr
    serve`, which is one): the run finishes, with free-text forms and prompted revisions."""
    for name, value in {
        "TTDR_BASE_URL": tiny_server.url,
        "TTDR_API_KEY": TOKEN,
        "TTDR_SECTION_TOKENS": "12",
        "TTDR_REMOTE_BACKOFF_S": "0.05",
    }.items():
        monkeypatch.setenv(name, value)
    args = ["research", QUESTION, "--backend", "openai", "--search", "local", "-n", "1"]
    args += ["--docs", str(tiny_config.docs[0]), "--no-evolve", "--length", "short"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert result.stderr.count("can only generate text") == 1
    assert "## References" in result.stdout
    assert TOKEN not in result.output


def test_four_runs_at_once_against_one_server_keep_separate_complete_histories(
    tiny_server: Server, tiny_config: ResearchConfig, tmp_path: Path
) -> None:
    """Four `ttdr research` processes, one data directory, one server that admits two
    requests at a time (the rest are refused with 429 and retried)."""
    env = {
        **os.environ,
        "TTDR_HOME": str(tmp_path),
        "TTDR_BACKEND": "ttdr",
        "TTDR_BASE_URL": tiny_server.url,
        "TTDR_API_KEY": TOKEN,
        "TTDR_REMOTE_ATTEMPTS": "40",
        "TTDR_REMOTE_BACKOFF_S": "0.05",
        "TTDR_SECTION_TOKENS": "12",
    }
    questions = [f"{QUESTION} Case {n}." for n in range(4)]
    base = [sys.executable, "-m", "ttdr.cli", "research", "--search", "local", "-n", "1"]
    base += ["--docs", str(tiny_config.docs[0]), "--no-evolve", "--quiet"]
    processes = [
        subprocess.Popen(
            [*base, question], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for question in questions
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert "locked" not in err

    researcher = Researcher(settings=Settings(home=tmp_path))
    runs = researcher.history()
    assert sorted(run.question for run in runs) == questions
    for run in runs:
        detail = researcher.get_run(run.id)
        assert detail.status is RunStatus.done
        assert [d.iteration for d in detail.drafts_list] == [0, 1]
        assert all(qa.iteration == 1 for qa in detail.qa_pairs) and detail.qa_pairs
        events = researcher.events(run.id)
        assert events[0].message == f"Research started: {run.question}"
        assert events[-1].kind is EventKind.finished
        report = researcher.get_report(run.id)
        assert report.question == run.question and report.references
        # Each process printed its own run's report.
        (printed,) = [out for out, _ in outputs if out.startswith(f"# {run.question}\n")]
        assert "## References" in printed
    # Every run counted its use of each prompt, none lost to another's write.
    by_component: dict[str, list] = {}
    for version in prompt_versions(Settings(home=tmp_path)):
        by_component.setdefault(version.component, []).append(version)
    for versions in by_component.values():
        assert len(versions) == 1, versions  # one seed, not one per process
        assert versions[0].uses == 4


def test_runs_starting_together_add_one_seed_and_lose_no_counts(tmp_path: Path) -> None:
    """What the four runs above share in the history, raced on purpose: the seed prompt and
    the use counts (each thread with a connection of its own, as each process has)."""
    start = threading.Barrier(8)
    seeds: list[int] = []

    def begin_run() -> None:
        prompts = PromptStore(Store(tmp_path / "ttdr.db"))
        start.wait()
        seed = prompts.seed("plan", "the seed")
        seeds.append(seed.id)
        for _ in range(10):
            prompts.record(seed.id, 8.0)

    threads = [threading.Thread(target=begin_run) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (version,) = PromptStore(Store(tmp_path / "ttdr.db")).versions("plan")
    assert set(seeds) == {version.id}
    assert (version.uses, version.scored, version.fitness) == (80, 80, 8.0)


def test_the_judge_can_have_a_server_of_its_own(
    tiny_server: Server, tiny_config: ResearchConfig, tmp_path: Path
) -> None:
    """The writer here, the judge an OpenAI-compatible server (TTDR_JUDGE_*)."""
    settings = Settings(
        home=tmp_path,
        judge_backend="openai",
        judge_base_url=tiny_server.url,
        judge_api_key=TOKEN,
        remote_backoff_s=0.05,
    )
    researcher = Researcher(tiny_config.model_copy(update={"iterations": 0}), settings=settings)
    events = list(researcher.stream(QUESTION))
    run = researcher.get_run(events[-1].run_id)
    assert run.status is RunStatus.done
    lost = [w for w in warnings(events) if "can only generate text" in w]
    assert lost == [lost[0]] and lost[0].startswith(f"The judge (tiny-llama at {tiny_server.url})")
    judged = run.stats.stages["judge"]
    assert judged.calls > 0 and judged.tokens > 0
    assert judged.forward_passes == 0  # the OpenAI API does not say; the writer's engine does
    assert run.stats.stages["plan"].forward_passes > 0


def test_a_server_killed_mid_run_fails_the_run_and_resume_finishes_it(
    tiny_server: Server, tiny_config: ResearchConfig, tmp_path: Path
) -> None:
    config = tiny_config.model_copy(update={"iterations": 1, **NO_EVOLVE})
    researcher = Researcher(config, settings=remote_settings(tmp_path, tiny_server))
    run_id = None
    with pytest.raises(RemoteServerError) as failure:
        for event in researcher.stream(QUESTION):
            run_id = event.run_id
            if event.stage is Stage.draft and event.kind is EventKind.started:
                tiny_server.kill()
    assert f"{tiny_server.url}/v1/" in str(failure.value)
    assert "tried 2 times" in str(failure.value)
    run = researcher.get_run(run_id)
    assert run.status is RunStatus.failed and "RemoteServerError" in run.error
    assert run.plan is not None  # the plan made before the kill is kept

    tiny_server.restart()
    resumed = Researcher(settings=remote_settings(tmp_path, tiny_server))
    events = list(resumed.stream_resume(run_id))
    assert resumed.get_run(run_id).status is RunStatus.done
    assert not [e for e in events if e.stage is Stage.plan]  # the plan was not made again
    assert resumed.get_report(run_id).references


# -- faults, against a loopback stub ----------------------------------------------------------


class Stub:
    """A loopback HTTP server that answers each request with the next scripted fault."""

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.requests = 0
        self.hung_up = threading.Event()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                self._answer()

            def _answer(self) -> None:
                stub.requests += 1
                step = stub.script[min(stub.requests, len(stub.script)) - 1]
                if step == "slow":
                    time.sleep(0.6)
                    step = "ok"
                if step == "watch":  # never answers; notes when the client hangs up
                    if self._client_hung_up(timeout=10):
                        stub.hung_up.set()
                    return
                status, body = {
                    "500": (500, json.dumps({"error": {"message": "boom"}})),
                    "429": (429, json.dumps({"error": {"message": "slow down"}})),
                    "401": (401, json.dumps({"error": {"message": "wrong token"}})),
                    "garbage": (200, "<html>not json"),
                    "wrong shape": (200, json.dumps({"choices": []})),
                    "ok": (200, json.dumps(OK_CHAT)),
                }[step]
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError):  # a client gave up on a slow answer
                    self.wfile.write(body.encode())

            def _client_hung_up(self, timeout: float) -> bool:
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    readable, _, _ = select.select([self.connection], [], [], 0.05)
                    if readable and self.connection.recv(1, socket.MSG_PEEK) == b"":
                        return True
                return False

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()


OK_CHAT = {
    "data": [{"id": "stub-model"}],
    "choices": [{"message": {"role": "assistant", "content": "An answer."}}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 3},
}


@pytest.fixture
def stub() -> Iterator:
    made: list[Stub] = []

    def make(*script: str) -> Stub:
        made.append(Stub(list(script)))
        return made[-1]

    yield make
    for one in made:
        one.server.shutdown()
        one.server.server_close()


def client(url: str, **options) -> RemoteClient:
    options = {"attempts": 3, "backoff_s": 0.01, "timeout_s": 5.0, "api_key": "sk-secret"} | options
    return RemoteClient(RemoteEndpoint(url, **options))


def chat(remote: RemoteClient) -> str:
    return remote.post("/v1/chat/completions", {}, lambda a: a["choices"][0]["message"]["content"])


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ("500", "answered HTTP 500: boom"),
        ("429", "answered HTTP 429: slow down"),
        ("garbage", "answered something that is not JSON"),
        ("wrong shape", "answered JSON without what was asked for"),
    ],
)
def test_a_fault_is_retried_then_one_error_naming_the_url(stub, fault: str, said: str) -> None:
    server = stub(fault)
    with pytest.raises(RemoteServerError) as failure:
        chat(client(server.url))
    assert server.requests == 3
    message = str(failure.value)
    assert message.startswith(f"the model server at {server.url}/v1/chat/completions {said}")
    assert "tried 3 times" in message and "sk-secret" not in message


@pytest.mark.parametrize("fault", ["500", "429", "garbage", "slow"])
def test_a_passing_fault_is_retried_away(stub, fault: str) -> None:
    server = stub(fault, "ok")
    assert chat(client(server.url, timeout_s=0.3)) == "An answer."
    assert server.requests == 2


def test_a_slow_answer_times_out_then_one_error(stub) -> None:
    server = stub("slow")
    with pytest.raises(RemoteServerError, match=r"did not answer within 0.2s \(tried 2 times"):
        chat(client(server.url, timeout_s=0.2, attempts=2))


def test_a_stop_ends_a_call_in_flight_before_the_clients_own_timeout(stub) -> None:
    """The server never answers: only the stop can end the call as RunStopped (without it,
    the 5 s timeout would end it as a RemoteServerError). No wall-clock bound is asserted."""
    server = stub("watch")
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    with pytest.raises(RunStopped):
        client(server.url, timeout_s=5, attempts=1).post(
            "/v1/chat/completions", {}, dict, stop=stop
        )


def test_a_stop_hangs_up_so_the_server_can_stop_the_call_too(stub) -> None:
    """`ttdr serve` stops a call whose client went away (tests/test_serve_client_gone.py):
    the client must really close its connection, not just stop waiting for the answer."""
    server = stub("watch")
    stop = threading.Event()
    threading.Timer(0.3, stop.set).start()
    with pytest.raises(RunStopped):
        client(server.url).post("/v1/chat/completions", {}, dict, stop=stop)
    assert server.hung_up.wait(10), "the connection stayed open after the stop"
    assert server.requests == 1  # a stop is not retried


def test_a_server_that_is_down_is_one_error_naming_it() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RemoteServerError, match=f"at {url}/v1/models could not be reached"):
        connect("ttdr", RemoteEndpoint(url, attempts=2, backoff_s=0.01))


def test_a_refused_key_is_final_at_once_and_never_shown(stub) -> None:
    server = stub("401")
    with pytest.raises(RemoteServerError, match="set TTDR_API_KEY") as failure:
        chat(client(server.url))
    assert server.requests == 1 and "sk-secret" not in str(failure.value)
    assert "sk-secret" not in repr(RemoteEndpoint(server.url, api_key="sk-secret"))


def test_the_openai_backend_reads_usage_from_any_server(stub) -> None:
    server = stub("ok")
    model = connect("openai", RemoteEndpoint(server.url, backoff_s=0.01))
    assert model.info.name == "stub-model"  # the first model the server lists
    reply = model.generate(MESSAGES, 16)
    assert reply.text == "An answer." and reply.stats.tokens == 3
    assert reply.stats.prompt_tokens == 5 and reply.stats.forward_passes == 0


def test_the_command_line_names_the_url_and_the_run_to_resume(
    home: Path, tiny_config: ResearchConfig, monkeypatch
) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    for name, value in {"TTDR_BASE_URL": url, "TTDR_API_KEY": "sk-secret"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("TTDR_REMOTE_BACKOFF_S", "0.01")
    args = ["research", QUESTION, "--backend", "ttdr", "--search", "local"]
    result = CliRunner().invoke(app, [*args, "--docs", str(tiny_config.docs[0])])
    assert result.exit_code == 1
    (run,) = Researcher(settings=Settings()).history()
    assert run.status is RunStatus.failed
    error = result.stderr.strip().splitlines()[-1]
    assert error.startswith(f"Error: the model server at {url}/v1/models could not be reached")
    assert error.endswith(f"ttdr research --resume {run.id}")
    assert "sk-secret" not in result.output


def test_a_remote_backend_without_an_address_is_one_clear_error(
    home: Path, tiny_config: ResearchConfig
) -> None:
    researcher = Researcher(tiny_config, settings=Settings(home=home, backend="ttdr"))
    with pytest.raises(ModelUnavailableError, match="TTDR_BACKEND=ttdr needs the server's addr"):
        list(researcher.stream(QUESTION))
    (run,) = researcher.history()
    assert run.status is RunStatus.failed
