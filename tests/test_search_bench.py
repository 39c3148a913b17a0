"""The retrieval benchmark runs end to end on a small scale and reports JSON."""

from __future__ import annotations

import json

from backends.search.bench import run_retrieval_benchmark


def test_the_benchmark_reports_every_measure_as_json() -> None:
    result = run_retrieval_benchmark(pages=12, local_docs=15, hosts=3, latency_ms=5, queries=3)

    assert json.loads(json.dumps(result)) == result
    fetch = result["fetch"]
    assert fetch["pages"] == 12 and fetch["failures"] == 0 and result["read"]["failures"] == 0
    assert fetch["concurrent_pages_per_s"] > 0 and fetch["serial_pages_per_s"] > 0
    assert fetch["speedup"] > 0
    assert result["extraction"]["pages"] == 12 and result["extraction"]["ms_per_page"] > 0
    local = result["local_index"]
    assert local["documents"] == 15 and local["passages"] >= 15
    assert local["query_ms_mean"] > 0 and local["build_s"] > 0
