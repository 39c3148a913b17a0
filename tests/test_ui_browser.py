"""The UI in a real browser: `python -m ui.launch` (what `ttdr ui` runs) on 127.0.0.1, driven by
headless Debian chromium through Playwright. One research on the fixture corpus with the tiny
model, from the form to the report, its timeline and the history. Screenshots are kept in
test-artifacts/ for people to look at."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CORPUS
from tests.ui_fixtures import QUESTION

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
TIMEOUT_MS = 90_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_healthy(url: str, server: subprocess.Popen, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"the UI server exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError("the UI server did not become healthy")


@pytest.fixture
def ui_server(tmp_path: Path, tiny_model: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "TTDR_HOME": str(tmp_path / "ttdr-home"),
        "TTDR_MODEL": str(tiny_model),
        "TTDR_SEARCH": "local",
        "TTDR_ITERATIONS": "2",
        "TTDR_SECTION_TOKENS": "12",
        "TTDR_VARIANTS": "1",  # self-evolution off: a run takes seconds
        "TTDR_EVOLUTION_ROUNDS": "0",
    }
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "ui.launch", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: the streamlit child stops with it
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, server)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"no chromium at {CHROMIUM} (.ci/run installs Debian's chromium)")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (pip install -e '.[dev]')"
    )
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def test_a_research_from_the_form_to_the_report_timeline_and_history(browser, ui_server) -> None:
    from playwright.sync_api import expect

    ARTIFACTS.mkdir(exist_ok=True)
    expect.set_options(timeout=TIMEOUT_MS)  # a busy two-core machine is slow, not wrong
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(TIMEOUT_MS)

    def settle() -> None:
        """Wait until the app's script has finished rerunning."""
        page.wait_for_timeout(300)
        expect(page.get_by_test_id("stStatusWidget")).to_be_hidden(timeout=TIMEOUT_MS)

    def shot(name: str) -> None:
        settle()
        page.screenshot(path=str(ARTIFACTS / f"ui-{name}.png"), full_page=True)

    page.goto(ui_server)
    start = page.get_by_role("button", name="Start research")
    expect(start).to_be_enabled()
    expect(page.get_by_text("Welcome to ttdr.")).to_be_visible()
    shot("1-first-launch")

    page.get_by_label("Question", exact=True).fill(QUESTION)
    page.get_by_label("Documents to index first", exact=True).fill(str(CORPUS))
    settle()
    start.click()

    page.wait_for_url(re.compile(r"/run\?run=[0-9a-f]+"))
    run_id = page.url.rsplit("=", 1)[1]
    expect(page.get_by_role("heading", name=QUESTION)).to_be_visible()
    page.get_by_role("tab", name="Report").wait_for()  # appears once the report is saved
    expect(page.get_by_role("button", name="Markdown")).to_be_visible()
    expect(page.get_by_text("done", exact=True).first).to_be_visible()
    expect(page.get_by_text("Final report", exact=False).first).to_be_visible()
    expect(page.get_by_text("References").first).to_be_visible()
    shot("2-report")

    page.get_by_role("tab", name="Timeline").click()
    expect(page.get_by_role("slider")).to_be_visible()
    expect(page.get_by_text(re.compile(r"R2 against R1"))).to_be_visible()
    shot("3-timeline")

    page.get_by_role("tab", name="Sources").click()
    expect(page.get_by_text("cited in the report as", exact=False).first).to_be_visible()
    shot("4-sources")

    page.get_by_role("link", name="History").click()
    expect(page.get_by_role("heading", name="History")).to_be_visible()
    settle()  # the run page's elements are gone once the script has finished
    expect(page.get_by_text("1 of 1 runs")).to_be_visible()
    expect(page.get_by_text(QUESTION, exact=True)).to_be_visible()
    expect(page.get_by_text(run_id, exact=False)).to_be_visible()
    expect(page.get_by_test_id("stBaseButton-secondary").filter(has_text="Open")).to_be_visible()
    shot("5-history")

    page.get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    settle()
    expect(page.get_by_text("Family:")).to_be_visible()
    expect(page.get_by_role("cell", name="smollm2-135m (default)")).to_be_visible()
    shot("6-models")


SCRIPT_LINKS = (
    "# Tides\n\nRead [this][r] and [that][s], or [here](javascript:alert(1)).\n\n"
    "[r]: javascript:alert(document.domain)\n"
    "- [s]: data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\n\n"
    "<a href='javascript:alert(2)'>raw</a> [ok](https://example.org/tides)\n"
)


def test_a_report_with_script_links_renders_none_in_the_browser(
    browser, ui_server, tmp_path: Path
) -> None:
    """A report whose text holds script links (inline, reference-style, raw HTML): the page
    the browser builds has no link to anything but the web and the app itself."""
    from playwright.sync_api import expect

    from tests.ui_fixtures import DRAFTS, stored_run
    from ttdr.store import Store

    store = Store(tmp_path / "ttdr-home" / "ttdr.db")
    run_id = stored_run(store, drafts=[DRAFTS[0], SCRIPT_LINKS])
    page = browser.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{ui_server}/run?run={run_id}")
    expect(page.get_by_role("link", name="ok")).to_be_visible(timeout=TIMEOUT_MS)
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    assert hrefs and all(href.startswith(("http:", "https:", "mailto:")) for href in hrefs), hrefs
    assert "javascript:alert(document.domain)" in page.content()  # kept visible as text
