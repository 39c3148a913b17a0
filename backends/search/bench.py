"""`ttdr bench retrieval`: how fast retrieval is on this machine, as JSON.

Everything is generated and served locally, so the numbers measure our code, not the internet:
- fetching: `pages` generated pages from a real HTTP server on 127.0.0.1, spread over `hosts`
  host names (all resolving to 127.0.0.1 through a stub resolver, so the per-host limit applies
  as on the web), each answer delayed by `latency_ms` to stand in for a network round trip;
  pages/s with the default concurrency (8, at most 2 per host) against serial fetching;
- reading: the same pages fetched and extracted together (what a search does), pages/s;
- extraction: ms per page for trafilatura on those pages, one at a time;
- local index: building an index of `local_docs` generated markdown documents in a temp dir,
  re-adding them unchanged (the incremental path), and query latency.

Run: `python -m backends.search.bench [pages] [local_docs]`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from backends.search.extract import extract_document
from backends.search.fetch import Fetcher, FetchSettings, FetchSkip, Page
from backends.search.local_index import LocalIndex
from backends.search.loopback import LoopbackSite, Route

_WORDS = """tide moon ocean gravity orbit coast harbour estuary current wave storm surge basin
river delta sediment salinity plankton reef kelp whale seal gull lighthouse pier sailor chart
compass latitude longitude meridian equator season solstice equinox eclipse comet planet
telescope observatory physics energy momentum friction pressure density temperature climate
glacier iceberg rainfall drought forest meadow valley mountain volcano granite basalt mineral
crystal fossil dinosaur evolution species genome protein enzyme cell membrane neuron signal
memory language grammar syntax poem novel library archive museum painting sculpture music
rhythm melody harmony violin piano engine turbine battery circuit voltage current magnet
algorithm database network protocol compiler kernel processor memory cache index query ranking
passage document citation research evidence hypothesis experiment measurement statistics""".split()  # noqa: SIM905


def run_retrieval_benchmark(
    pages: int = 200,
    local_docs: int = 1000,
    *,
    hosts: int = 10,
    latency_ms: float = 20.0,
    queries: int = 20,
    seed: int = 7,
) -> dict[str, Any]:
    """Run the benchmark; returns a JSON-serialisable dict (see the module docstring)."""
    bodies = _pages(pages, seed)
    result: dict[str, Any] = {
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(terse=True),
            "cpus": os.cpu_count(),
        }
    }
    result.update(_fetching(bodies, seed, hosts, latency_ms))
    result["extraction"] = _extraction(bodies)
    result["local_index"] = _local_index(random.Random(seed + 1), local_docs, queries)
    return result


def _pages(count: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    return [_page(rng, i) for i in range(count)]


def _routes(bodies: list[bytes]) -> dict[str, Route]:
    routes: dict[str, Route] = {
        f"/page/{i}": Route(200, {"Content-Type": "text/html; charset=utf-8"}, body)
        for i, body in enumerate(bodies)
    }
    routes["/robots.txt"] = Route(200, {"Content-Type": "text/plain"}, b"User-agent: *\nAllow: /\n")
    return routes


def _fetching(bodies: list[bytes], seed: int, hosts: int, latency_ms: float) -> dict[str, Any]:
    names = [f"site{i}.bench.test" for i in range(max(1, hosts))]

    def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    default = FetchSettings(allow_loopback=True)
    serial = replace(default, max_concurrency=1, per_host_concurrency=1)
    with _server_process(len(bodies), seed, latency_ms / 1000) as port:
        urls = [f"http://{names[i % len(names)]}:{port}/page/{i}" for i in range(len(bodies))]
        concurrent_s, concurrent_failures = _time_fetch(urls, default, resolver)
        serial_s, serial_failures = _time_fetch(urls, serial, resolver)
        read_s, read_failures = _time_read(urls, default, resolver)
    count = len(urls)
    return {
        "fetch": {
            "pages": count,
            "hosts": len(names),
            "server_latency_ms": latency_ms,
            "max_concurrency": default.max_concurrency,
            "per_host_concurrency": default.per_host_concurrency,
            "concurrent_pages_per_s": _rate(count, concurrent_s),
            "serial_pages_per_s": _rate(count, serial_s),
            "speedup": round(serial_s / concurrent_s, 2) if concurrent_s else None,
            "failures": concurrent_failures + serial_failures,
        },
        "read": {
            "pages": count,
            "pages_per_s": _rate(count, read_s),
            "note": "fetch + extraction with the default concurrency, as a search does",
            "failures": read_failures,
        },
    }


@contextmanager
def _server_process(pages: int, seed: int, latency_s: float) -> Iterator[int]:
    """Serve the generated pages from a separate process (`python -m backends.search.bench
    --serve`), so that the server does not compete with the fetcher for this process's GIL
    (that would measure the server, not the fetcher). Yields the port."""
    command = [sys.executable, "-m", "backends.search.bench", "--serve"]
    process = subprocess.Popen(
        [*command, str(pages), str(seed), str(latency_s)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            process.kill()
            error = process.stderr.read() if process.stderr else ""
            raise RuntimeError(f"the benchmark's HTTP server did not start: {error[-2000:]}")
        yield int(line)
    finally:
        if process.stdin is not None:
            process.stdin.close()  # tells the server to stop
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _serve(pages: int, seed: int, latency_s: float) -> None:
    with LoopbackSite(_routes(_pages(pages, seed)), latency_s=latency_s) as site:
        print(site.port, flush=True)
        sys.stdin.read()  # until the benchmark closes our stdin


def _time_fetch(urls: list[str], settings: FetchSettings, resolver: Any) -> tuple[float, int]:
    async def go() -> int:
        fetcher = Fetcher(settings, resolver=resolver)
        try:
            outcomes = await asyncio.gather(
                *(fetcher.fetch(url) for url in urls), return_exceptions=True
            )
        finally:
            await fetcher.aclose()
        for outcome in outcomes:
            if isinstance(outcome, BaseException) and not isinstance(outcome, FetchSkip):
                raise outcome
        return sum(isinstance(outcome, BaseException) for outcome in outcomes)

    start = time.perf_counter()
    failures = asyncio.run(go())
    return time.perf_counter() - start, failures


def _time_read(urls: list[str], settings: FetchSettings, resolver: Any) -> tuple[float, int]:
    async def go() -> int:
        fetcher = Fetcher(settings, resolver=resolver)
        try:
            pages = await fetcher.read_many(urls)
        finally:
            await fetcher.aclose()
        return sum(not isinstance(page, Page) for page in pages)

    start = time.perf_counter()
    failures = asyncio.run(go())
    return time.perf_counter() - start, failures


def _extraction(bodies: list[bytes]) -> dict[str, Any]:
    extract_document(bodies[0], content_type="text/html")  # imports and warm-up, not timed
    start = time.perf_counter()
    for body in bodies:
        extract_document(body, content_type="text/html", url="http://bench.test/page")
    elapsed = time.perf_counter() - start
    return {
        "pages": len(bodies),
        "ms_per_page": round(1000 * elapsed / len(bodies), 2),
        "mean_page_kb": round(statistics.mean(len(b) for b in bodies) / 1024, 1),
    }


def _local_index(rng: random.Random, documents: int, queries: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ttdr-bench-") as tmp:
        folder = Path(tmp) / "docs"
        folder.mkdir()
        for i in range(documents):
            (folder / f"doc-{i:05d}.md").write_text(_markdown(rng, i), encoding="utf-8")
        index = LocalIndex(Path(tmp) / "ttdr.db")
        start = time.perf_counter()
        report = index.add(folder)
        build_s = time.perf_counter() - start
        start = time.perf_counter()
        index.add(folder)
        readd_s = time.perf_counter() - start
        passages = sum(doc.passages for doc in index.documents())
        index.search("warm up", k=8)
        timings = []
        for _ in range(queries):
            question = "how does " + " ".join(rng.sample(_WORDS, 4)) + " work?"
            start = time.perf_counter()
            index.search(question, k=8)
            timings.append(1000 * (time.perf_counter() - start))
    timings.sort()
    return {
        "documents": report.added,
        "passages": passages,
        "build_s": round(build_s, 3),
        "build_ms_per_document": round(1000 * build_s / max(1, documents), 3),
        "readd_unchanged_s": round(readd_s, 3),
        "queries": queries,
        "query_ms_mean": round(statistics.mean(timings), 3) if timings else None,
        "query_ms_p95": round(timings[int(0.95 * (len(timings) - 1))], 3) if timings else None,
    }


def _sentence(rng: random.Random) -> str:
    words = rng.choices(_WORDS, k=rng.randint(8, 18))
    return " ".join(words).capitalize() + "."


def _paragraph(rng: random.Random) -> str:
    return " ".join(_sentence(rng) for _ in range(rng.randint(3, 7)))


def _page(rng: random.Random, i: int) -> bytes:
    title = f"Notes on {' and '.join(rng.sample(_WORDS, 2))} ({i})"
    paragraphs = "".join(f"<p>{_paragraph(rng)}</p>" for _ in range(rng.randint(6, 12)))
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title}</title></head><body>"
        "<nav><a href='/'>Home</a> <a href='/about'>About</a> <a href='/archive'>Archive</a></nav>"
        f"<article><h1>{title}</h1><p class='byline'>Published 2024-05-{1 + i % 28:02d}</p>"
        f"{paragraphs}</article>"
        "<footer>Copyright the bench authors. <a href='/privacy'>Privacy</a></footer>"
        "</body></html>"
    ).encode()


def _markdown(rng: random.Random, i: int) -> str:
    title = f"{' '.join(rng.sample(_WORDS, 3)).capitalize()} ({i})"
    return f"# {title}\n\n" + "\n\n".join(_paragraph(rng) for _ in range(rng.randint(3, 6)))


def _rate(count: int, seconds: float) -> float | None:
    return round(count / seconds, 1) if seconds else None


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["--serve"]:
        _serve(int(args[1]), int(args[2]), float(args[3]))
        return
    print(json.dumps(run_retrieval_benchmark(*(int(a) for a in args)), indent=2))


if __name__ == "__main__":
    main()
