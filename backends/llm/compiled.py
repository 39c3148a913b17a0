"""`TTDR_COMPILE=1`: the layers of a decode step compiled by `torch.compile`, for a CPU.

Once the weights are int4 or packed bfloat16, a one-token step of SmolLM2-135M spends about a
third of its time not multiplying: some 1,000 small operators (norms, RoPE, residual adds, cache
writes) dispatched one by one from Python. Inductor fuses them into a few C++ loops and leaves
the matmuls to the same kernels (the int4 and oneDNN ones are called as they are). Measured on a
2-core AVX512-BF16 Xeon, int4 weights, one token against 128 cached: 13.9 ms per forward eager,
10.4 ms compiled.

The price is compile time: about 45 s the first time a process meets a step shape, 8 s when
inductor's cache on disk already holds it (kept under ttdr's model cache). So it is opt-in, and
only the calls that repeat by the hundred go through it: steps of at most `MAX_ROWS` tokens per
row that append to the static cache (autoregressive and block-parallel decoding with the exact
cache). Prefills, the dual and prefix caches' refreshes and training stay eager, so a run
compiles a few graphs, not one per shape. Compiled calls are serialised by a lock (dynamo's
state is not meant to be entered from several threads, and on a CPU two forwards at once only
share the same cores). A machine where compiling fails (no C++ compiler) says so once and
decodes eagerly.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import torch

from backends.llm.kv_cache import StaticKVCache
from backends.llm.transformer import Transformer

MAX_ROWS = 16  # tokens per row of a compiled step: a block of up to 16, never a prefill

log = logging.getLogger(__name__)


class CompiledLayers:
    """The layer stack of `model`, compiled, for the steps `accepts` says it serves."""

    def __init__(self, model: Transformer) -> None:
        self.model = model
        self.failure: str | None = None
        self.compiled_calls = 0  # steps that ran compiled code (the bench and tests read it)
        self._lock = threading.Lock()
        self._compiled = torch.compile(model.run_layers, dynamic=True)

    def accepts(self, rows: int, cache: object, slot: int | None) -> bool:
        return self.failure is None and rows <= MAX_ROWS and slot is None and (
            isinstance(cache, StaticKVCache)
        )  # fmt: skip

    def __call__(self, x, cos, sin, mask, cache, commit) -> torch.Tensor:
        with self._lock:
            if self.failure is None:
                try:
                    out = self._compiled(x, cos, sin, mask, cache, None, commit)
                    self.compiled_calls += 1
                    return out
                except Exception as exc:  # inductor's errors have no common public base
                    if not _is_compile_failure(exc):
                        raise
                    self._give_up(exc)
        return self.model.run_layers(x, cos, sin, mask, cache, None, commit)

    def _give_up(self, exc: Exception) -> None:
        self.failure = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        log.warning("TTDR_COMPILE: compiling failed, decoding eagerly: %s", self.failure)


def compile_decode_steps(model: Transformer, model_cache: Path | None = None) -> Transformer:
    """Route `model`'s decode steps through compiled layers; inductor's compiled kernels are
    kept between processes under `model_cache`/inductor (unless TORCHINDUCTOR_CACHE_DIR
    already says where)."""
    if model_cache is not None and _inductor_cache_is_default():
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(model_cache / "inductor")
    model.compiled_layers = CompiledLayers(model)
    return model


def _inductor_cache_is_default() -> bool:
    """Whether the user left TORCHINDUCTOR_CACHE_DIR alone: torch writes its default (a
    folder under /tmp, gone at the next boot) into the variable the first time it asks."""
    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    chosen = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    return chosen is None or os.path.abspath(chosen) == os.path.abspath(default_cache_dir())


def _is_compile_failure(exc: Exception) -> bool:
    """Errors of the compiler itself (no C++ toolchain, an unsupported operator), not of
    the model's inputs, which must surface as they would eagerly."""
    from torch._dynamo.exc import BackendCompilerFailed, InternalTorchDynamoError, Unsupported

    compile_errors = (BackendCompilerFailed, InternalTorchDynamoError, Unsupported)
    return isinstance(exc, compile_errors) or type(exc).__module__.startswith("torch._inductor")
