"""`ttdr bench engine`'s parts: threads, the weight-read bound, the cost sweep, and the
llama.cpp comparison against a loopback stub that speaks llama-server's API (a real
subprocess on 127.0.0.1; no llama.cpp binary is needed). No test asserts a wall-clock time.
"""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from backends.llm.bandwidth import copy_bandwidth, weight_bytes_per_forward
from backends.llm.bench import compare_with_llama_cpp, stepwise_nll
from backends.llm.cost_sweep import plot_cost_sweep, run_cost_sweep
from backends.llm.engine import DiffusionEngine
from backends.llm.loader import load_checkpoint
from backends.llm.threads import choose_threads
from backends.llm.tiny import write_tiny_checkpoint
from ttdr.cli import app

STUB_SERVER = textwrap.dedent(
    """\
    #!{python}
    import json, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    port = int(sys.argv[sys.argv.index("--port") + 1])
    requests_log = {log!r}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, body):
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.reply({{"status": "ok"}})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            with open(requests_log, "a") as log:
                log.write(json.dumps({{"path": self.path, "argv": sys.argv, **body}}) + "\\n")
            n = body["max_tokens"]
            self.reply({{
                "choices": [{{"text": "x" * n, "index": 0, "finish_reason": "length"}}],
                "usage": {{"prompt_tokens": len(body["prompt"]), "completion_tokens": n}},
                "timings": {{"predicted_n": n, "predicted_ms": 5.0 * n, "prompt_ms": 1.0}},
            }})

    HTTPServer(("127.0.0.1", port), Handler).serve_forever()
    """
)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_checkpoint(tmp_path_factory.mktemp("bench") / "llama", "llama", seed=5)


def stub_binary(folder: Path, script: str = STUB_SERVER) -> tuple[Path, Path]:
    log = folder / "requests.jsonl"
    binary = folder / "llama-server"
    binary.write_text(script.format(python=sys.executable, log=str(log)))
    binary.chmod(0o755)
    return binary, log


def test_the_llama_cpp_mode_sends_the_bench_prompts_greedily_and_reports_speed(tmp_path) -> None:
    binary, log = stub_binary(tmp_path)
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))
    prompts = [[1, 2, 3], [4, 5, 6, 7]]
    report = compare_with_llama_cpp(binary, gguf, prompts, 8, 20.0, threads=2)
    assert report["tokens"] == 16
    assert report["ms_per_token"] == 5.0
    assert report["decode_tokens_per_s"] == 200.0
    assert report["ttdr_autoregressive_vs_llama_cpp"] == round(20.0 / report["tokens_per_s"], 3)
    assert report["gguf_bytes"] == 64
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert [r["prompt"] for r in sent] == [prompts[0], *prompts]  # a warm-up, then each prompt
    assert all(r["path"] == "/v1/completions" for r in sent)
    assert [r["max_tokens"] for r in sent[1:]] == [8, 8]
    assert all(r["temperature"] == 0 and r["ignore_eos"] for r in sent)
    argv = sent[0]["argv"]
    assert argv[argv.index("-m") + 1] == str(gguf)
    assert argv[argv.index("--host") + 1] == "127.0.0.1"
    assert argv[argv.index("-t") + 1] == "2"


def test_the_llama_cpp_mode_says_in_one_line_why_it_was_skipped(tmp_path) -> None:
    missing = compare_with_llama_cpp(None, tmp_path / "x.gguf", [[1]], 4, 1.0, threads=1)
    assert "llama-server not found" in missing["skipped"]
    binary, _ = stub_binary(tmp_path)
    no_gguf = compare_with_llama_cpp(binary, None, [[1]], 4, 1.0, threads=1)
    assert "needs a GGUF" in no_gguf["skipped"]


def test_a_llama_server_that_dies_at_start_is_reported_with_its_last_words(tmp_path) -> None:
    script = "#!{python}\nimport sys\nprint('error: unable to load model')\nsys.exit(3)\n"
    binary, _ = stub_binary(tmp_path, script.replace("{log!r}", ""))
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    report = compare_with_llama_cpp(binary, gguf, [[1]], 4, 1.0, threads=1)
    assert report["skipped"] == "llama-server exited with 3: error: unable to load model"


def test_a_llama_server_killed_by_a_signal_names_it_after_one_retry(tmp_path) -> None:
    script = (
        "#!{python}\nimport os, signal, sys\nprint('starting', sys.argv[-1], flush=True)\n"
        "os.kill(os.getpid(), signal.SIGILL)\n"
    )
    binary, _ = stub_binary(tmp_path, script)
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    report = compare_with_llama_cpp(binary, gguf, [[1]], 4, 1.0, threads=1)
    first, retry = report["skipped"].split("; with --no-repack too: ")
    assert first.startswith("llama-server was killed by SIGILL") and "--force-reinstall" in first
    assert "--no-repack" not in first and retry.endswith("--no-repack")


def test_a_llama_server_whose_kernels_fault_is_measured_without_repacking(tmp_path) -> None:
    """ggml's AMX kernels fault where a hypervisor withholds the tile state; the AVX path works."""
    crash_unless_no_repack = STUB_SERVER.replace(
        "port = int(",
        "import os, signal\nif '--no-repack' not in sys.argv:\n"
        "    print('threadpool init', flush=True)\n    os.kill(os.getpid(), signal.SIGSEGV)\n"
        "port = int(",
    )
    binary, log = stub_binary(tmp_path, crash_unless_no_repack)
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    report = compare_with_llama_cpp(binary, gguf, [[1, 2]], 4, 10.0, threads=1)
    assert report["tokens"] == 4 and report["ms_per_token"] == 5.0
    assert report["extra_flags"] == ["--no-repack"]
    assert report["first_start"] == "llama-server was killed by SIGSEGV: threadpool init"
    sent = [json.loads(line) for line in log.read_text().splitlines()]
    assert all("--no-repack" in r["argv"] for r in sent)


def test_threads_follow_omp_then_the_cgroup_quota_then_the_affinity_mask(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert choose_threads({"OMP_NUM_THREADS": "3"}, tmp_path).to_json() == {
        "threads": 3,
        "decided_by": "OMP_NUM_THREADS",
    }
    assert choose_threads({}, tmp_path).threads == 8  # no cgroup files: the affinity mask
    (tmp_path / "cpu.max").write_text("250000 100000\n")
    quota = choose_threads({}, tmp_path)
    assert (quota.threads, quota.source) == (2, "cgroup quota")
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert choose_threads({}, tmp_path).source == "affinity"
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert choose_threads({"OMP_NUM_THREADS": ""}, v1).threads == 1


def test_the_weight_read_bound_counts_each_weight_once_and_int8_as_one_byte(tiny) -> None:
    plain = load_checkpoint(tiny, dtype=torch.float32).model
    expected = sum(
        p.numel() * 4 for name, p in plain.named_parameters() if name != "embed.weight"
    ) + (plain.embed.weight.numel() * 4 if plain.args.tie_embeddings else 0)
    assert weight_bytes_per_forward(plain) == expected
    int8 = load_checkpoint(tiny, dtype=torch.float32, fuse=True, weights="int8").model
    linear = sum(m.weight.numel() for m in plain.modules() if isinstance(m, torch.nn.Linear))
    assert weight_bytes_per_forward(int8) < expected - linear * 3 + linear  # ~1 byte a weight
    int4 = load_checkpoint(tiny, dtype=torch.float32, fuse=True, weights="int4").model
    head = plain.lm_head.weight.numel()
    # a projection weight: half a byte of code plus a float32 scale and zero per 32 (0.25 bytes),
    # not the float copy kept for prefills; the head stays float
    projections = linear - head
    assert weight_bytes_per_forward(int4) == expected - projections * 4 + projections * 0.75
    assert copy_bandwidth(nbytes=1 << 20, repeats=2) > 0


def test_the_cost_sweep_times_every_block_size_at_every_context_that_fits(tmp_path, tiny) -> None:
    folder = write_tiny_checkpoint(tmp_path / "short", "llama", context_length=64)
    model = load_checkpoint(folder, dtype=torch.float32, fuse=True).model
    sweep = run_cost_sweep(model, block_sizes=(1, 4), contexts=(16, 32, 64), repeats=1)
    assert sweep["contexts"] == [16, 32]
    assert set(sweep["ms_per_forward"]) == {"16", "32"}
    assert all(set(row) == {"1", "4"} for row in sweep["ms_per_forward"].values())
    assert sweep["skipped_contexts"]["contexts"] == [64]
    png = plot_cost_sweep(sweep, tmp_path / "plot" / "sweep.png")
    pytest.importorskip("matplotlib")
    assert png is not None
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bench_engine_writes_the_sweep_and_refuses_unknown_options(tmp_path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["bench", "engine", "--tiny", "llama", "--dtype", "int9"])
    assert result.exit_code == 2
    assert "--dtype takes auto, float32, bfloat16, int8, int4" in result.output
    out = tmp_path / "sweep"
    result = runner.invoke(
        app, ["bench", "engine", "--tiny", "sdar", "--sweep", "--out", str(out), "--plain"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "cost_sweep.json").read_text())
    assert report["optimisations"] == {
        "fused_projections": False,
        "static_kv_cache": False,
        "one_token_autoregressive_step": False,
        "onednn_packed_linears": False,
        "compiled_decode_steps": False,
    }
    assert report["cost_sweep"]["block_sizes"] == [1, 4, 8, 16]
    assert report["weight_read_bound_ms"] > 0
    assert report["cpu_threads"] == torch.get_num_threads()


def test_bench_engine_compiles_and_reports_the_drift_and_the_speedup(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    result = CliRunner().invoke(
        app,
        ["bench", "engine", "--tiny", "llama", "--tokens", "6", "--dtype", "float32", "--compile"],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["optimisations"]["compiled_decode_steps"] is True
    assert report["compile_failure"] is None
    assert report["compiled_steps"] > 0
    drift = report["compiled_vs_eager"]
    assert drift["greedy_agreement"] == 1.0  # float32: the same tokens
    assert drift["stepwise_nll_compiled"] == pytest.approx(drift["stepwise_nll_eager"], rel=1e-4)
    assert drift["eager_autoregressive_tokens_per_s"] > 0
    assert drift["autoregressive_speedup"] > 0


def test_bench_engine_says_why_llama_cpp_was_skipped(monkeypatch) -> None:
    monkeypatch.delenv("TTDR_LLAMA_SERVER", raising=False)
    result = CliRunner().invoke(
        app, ["bench", "engine", "--tiny", "llama", "--tokens", "4", "--vs", "llama-cpp"]
    )
    assert result.exit_code == 0, result.output
    assert "llama.cpp skipped:" in result.stderr
    report = json.loads(result.stdout)
    assert report["llama_cpp"]["skipped"]
    assert set(report["modes"]) == {"autoregressive", "naive_diffusion", "block_parallel_cached"}
    assert all(mode["vs_bound"] > 0 for mode in report["modes"].values())


def test_auto_decodes_in_int4_only_a_4_bit_source_on_a_cpu_with_native_bfloat16(
    monkeypatch,
) -> None:
    from backends.llm import registry

    cpu = torch.device("cpu")
    assert registry.PRESETS[registry.DEFAULT_MODEL].four_bit_source
    assert not registry.PRESETS[registry.CONVERTED_MODEL].four_bit_source  # merged LoRA deltas
    monkeypatch.setattr(registry, "pick_dtype", lambda device: torch.bfloat16)  # as on AVX512
    assert registry.decode_precision("auto", cpu, four_bit_source=True) == (torch.bfloat16, "int4")
    assert registry.decode_precision("auto", cpu) == (torch.bfloat16, None)
    explicit = registry.decode_precision("bfloat16", cpu, four_bit_source=True)
    assert explicit == (torch.bfloat16, None)
    monkeypatch.setattr(registry, "pick_dtype", lambda device: torch.float32)  # as on AVX2
    assert registry.decode_precision("auto", cpu, four_bit_source=True) == (torch.float32, None)
    assert registry.decode_precision("int4", cpu) == (torch.float32, "int4")


def test_the_stepwise_nll_is_the_whole_text_nll_of_a_causal_model(tmp_path) -> None:
    """One token per forward through the static cache and one causal call over the whole
    text are the same likelihood in float32 (the bench sets the two against each other)."""
    folder = write_tiny_checkpoint(tmp_path / "llama", "llama", seed=5)
    loaded = load_checkpoint(folder, dtype=torch.float32, fuse=True)
    text = "Research reports cite their sources. The draft is revised with evidence."
    ids = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    whole = DiffusionEngine.from_loaded(loaded).score(text).nll_per_token
    assert stepwise_nll(loaded.model, ids) == pytest.approx(whole, rel=1e-5)
