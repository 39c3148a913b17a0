"""Compiled decode steps (`TTDR_COMPILE`) against eager decoding, on tiny real checkpoints.

In float32 the compiled layers must decode the same tokens as the eager ones (inductor's
fused loops sum in the same order for these shapes); the test also checks that compiled code
really ran, so it cannot pass by quietly staying eager. A machine whose compiler is missing
must still decode, eagerly, and say why. Speed is measured by `ttdr bench engine --compile`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from backends.llm.compiled import MAX_ROWS, compile_decode_steps
from backends.llm.engine import DiffusionEngine
from backends.llm.kv_cache import KVCache, StaticKVCache
from backends.llm.loader import load_checkpoint
from backends.llm.packed import packing_supported
from backends.llm.tiny import write_tiny_checkpoint

MESSAGES = [{"role": "user", "content": "Plan a report on tides and their causes."}]
SHORT = [{"role": "user", "content": "Tides?"}]


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compiled")
    families = ("llama", "sdar")
    return {family: write_tiny_checkpoint(root / family, family, seed=5) for family in families}


@pytest.fixture(autouse=True)
def own_inductor_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch) -> None:
    """Compiled kernels in a folder of this test session, never the user's cache."""
    cache = tmp_path_factory.getbasetemp() / "inductor"
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(cache))


def engine(folder: Path, *, compiled: bool, dtype=torch.float32, **policy) -> DiffusionEngine:
    loaded = load_checkpoint(folder, dtype=dtype, fuse=True)
    if compiled:
        compile_decode_steps(loaded.model)
    return DiffusionEngine.from_loaded(loaded, **policy)


def fill(model: DiffusionEngine, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    canvas, blocks = model.generation_canvas(prompts, new_tokens)
    model.denoiser.fill(canvas, blocks, model.policy)
    return canvas.tokens[:, canvas.gen_start :].tolist()


@pytest.mark.parametrize(
    ("family", "policy"),
    [("llama", {}), ("sdar", {"threshold": 0.5}), ("sdar", {"threshold": 1.0})],
)
def test_compiled_steps_decode_what_eager_steps_do(checkpoints, family, policy) -> None:
    """One prompt and a left-padded batch of two: one-token steps (llama), blocks with and
    without finished slots fed along (sdar, two thresholds), the canvas's last slot."""
    fast = engine(checkpoints[family], compiled=True, **policy)
    plain = engine(checkpoints[family], compiled=False, **policy)
    one, two = fast.encode_chat(MESSAGES), fast.encode_chat(SHORT)
    for prompts in ([one], [one, two]):
        assert fill(fast, prompts, 12) == fill(plain, prompts, 12)
    compiled = fast.model.compiled_layers
    assert compiled.failure is None
    assert compiled.compiled_calls > 0


def test_only_repeated_step_shapes_are_compiled(checkpoints) -> None:
    """Prefills, the dual cache's in-place block and cache-less calls stay eager."""
    model = engine(checkpoints["llama"], compiled=True).model
    compiled = model.compiled_layers
    assert compiled.accepts(1, StaticKVCache(8), None)
    assert compiled.accepts(MAX_ROWS, StaticKVCache(64), None)
    assert not compiled.accepts(MAX_ROWS + 1, StaticKVCache(64), None)
    assert not compiled.accepts(1, KVCache(), None)
    assert not compiled.accepts(1, StaticKVCache(8), 3)
    assert not compiled.accepts(1, None, None)
    with torch.inference_mode():
        model(torch.tensor([[1, 2, 3]]), torch.tensor([[0, 1, 2]]))  # no cache: eager
    assert compiled.compiled_calls == 0


@pytest.mark.skipif(
    not packing_supported(torch.device("cpu"), torch.bfloat16),
    reason="packed bfloat16 linears need AVX512-BF16 or AMX",
)
def test_packed_bfloat16_layers_compile(checkpoints) -> None:
    """The oneDNN packed weights reach compiled code through ttdr's operator; bfloat16 sums
    in another order there, so the logits are compared, not the tokens."""
    fast = engine(checkpoints["llama"], compiled=True, dtype=torch.bfloat16)
    plain = engine(checkpoints["llama"], compiled=False, dtype=torch.bfloat16)
    prompt = fast.encode_chat(MESSAGES)
    tokens = torch.tensor([prompt])
    positions = torch.arange(len(prompt))[None]
    with torch.inference_mode():
        logits = []
        for model in (fast.model, plain.model):
            cache = StaticKVCache(len(prompt) + 1)
            model(tokens[:, :-1], positions[:, :-1], cache=cache, commit=True)
            logits.append(model(tokens[:, -1:], positions[:, -1:], cache=cache))
    assert fast.model.compiled_layers.compiled_calls == 1
    assert torch.allclose(logits[0], logits[1], atol=0.1, rtol=0.05)


SCRIPT = """
import json, sys, torch
from pathlib import Path
from backends.llm.compiled import compile_decode_steps
from backends.llm.engine import DiffusionEngine
from backends.llm.loader import load_checkpoint
tokens = []
for compiled in (True, False):
    loaded = load_checkpoint(Path(sys.argv[1]), dtype=torch.float32, fuse=True)
    if compiled:
        compile_decode_steps(loaded.model)
    engine = DiffusionEngine.from_loaded(loaded)
    prompt = engine.encode_chat([{"role": "user", "content": "Tides?"}])
    canvas, blocks = engine.generation_canvas([prompt], 8)
    engine.denoiser.fill(canvas, blocks, engine.policy)
    tokens.append(canvas.tokens[0, canvas.gen_start:].tolist())
    if compiled:
        failure = loaded.model.compiled_layers.failure
print(json.dumps({"failure": failure, "same": tokens[0] == tokens[1]}))
"""


def test_without_a_compiler_decoding_goes_on_eagerly(checkpoints, tmp_path) -> None:
    """A real process whose C++ compiler is missing (and whose kernel cache is empty)."""
    env = os.environ | {"CXX": str(tmp_path / "no-such-compiler"), "TORCHINDUCTOR_CACHE_DIR":
                        str(tmp_path / "empty-cache")}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(checkpoints["llama"])],
        capture_output=True, text=True, env=env, timeout=600,
        cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["same"]
    assert result["failure"]
    assert "compiling failed, decoding eagerly" in done.stderr
