"""What bounds a call: a stop request is seen before the next forward pass, every prompt is
fitted to the model's context, and a long prompt is prefilled in pieces with the same result."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch

from backends.llm import denoise
from backends.llm.engine import MIN_NEW_TOKENS, DiffusionEngine, fit_to_context
from backends.llm.loader import load_checkpoint
from backends.llm.protocol import Span
from backends.llm.tiny import write_tiny_checkpoint
from ttdr.errors import RunStopped

LONG = "The tide rises and falls along the coast twice a day. " * 200  # ~2,400 tokens


def engine_for(folder: Path) -> DiffusionEngine:
    return DiffusionEngine.from_loaded(load_checkpoint(folder, dtype=torch.float32))


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("limits")
    return {
        "llama": write_tiny_checkpoint(root / "llama", "llama", seed=5),
        "llada": write_tiny_checkpoint(root / "llada", "llada", seed=5),
        "short": write_tiny_checkpoint(root / "short", "sdar", seed=5, context_length=256),
        "sdar": write_tiny_checkpoint(root / "sdar", "sdar", seed=5, context_length=16384),
    }


def stop_after_forwards(model: DiffusionEngine, count: int, stop: threading.Event) -> list[int]:
    """A real forward hook on the model that sets `stop` during its `count`-th forward."""
    seen: list[int] = []

    def hook(_module, _args) -> None:
        seen.append(1)
        if len(seen) == count:
            stop.set()

    model.model.register_forward_pre_hook(hook)
    return seen


@pytest.mark.parametrize("family", ["llama", "llada"])
def test_a_stop_request_ends_generation_before_the_next_forward(folders, family) -> None:
    model = engine_for(folders[family])
    stop = threading.Event()
    seen = stop_after_forwards(model, 3, stop)
    messages = [{"role": "user", "content": "Why are there tides?"}]
    with pytest.raises(RunStopped):
        model.generate(messages, 64, stop=stop)
    assert len(seen) == 3  # the forward that saw the request finished; no other began


def test_a_stop_request_ends_an_infill_too(folders) -> None:
    model = engine_for(folders["llada"])
    stop = threading.Event()
    stop.set()
    document = "Tides: ____ and more."
    with pytest.raises(RunStopped):
        model.infill(document, [Span(7, 11, length=8)], stop=stop)


def test_prompts_are_cut_in_the_middle_to_fit_the_context() -> None:
    prompt = list(range(1000))
    fitted, budget, cut = fit_to_context(prompt, 64, 256)
    assert len(fitted) + budget == 256 and budget == MIN_NEW_TOKENS and cut == 1000 - len(fitted)
    assert fitted[:10] == prompt[:10] and fitted[-10:] == prompt[-10:]
    assert fit_to_context(prompt[:100], 64, 256) == (prompt[:100], 64, 0)  # fits: untouched
    assert fit_to_context(prompt[:200], 100, 256) == (prompt[:200], 56, 0)  # reply shrinks first


def test_a_prompt_longer_than_the_context_still_generates_and_says_how_much_was_cut(
    folders,
) -> None:
    model = engine_for(folders["short"])
    assert model.info.context_length == 256
    generation = model.generate([{"role": "user", "content": LONG}], 64)
    stats = generation.stats
    assert stats.trimmed_prompt_tokens > 2000
    assert stats.prompt_tokens + stats.tokens <= 256


def test_a_long_prompt_prefilled_in_chunks_predicts_as_one_prefill_does(
    folders, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = engine_for(folders["sdar"])  # block-causal with an exact cache
    prompt = model.encode_chat([{"role": "user", "content": LONG}])
    assert len(prompt) > 2 * denoise.PREFILL_CHUNK
    # Whole chunks go first, each a forward; the rest rides with the first decoding step.
    chunks = (len(prompt) - 1) // denoise.PREFILL_CHUNK
    logits: list[torch.Tensor] = []

    def keep_logits(_module, _args, output: torch.Tensor) -> None:
        if output.shape[1]:  # a prefill chunk asks for no logits
            logits.append(output.detach().clone())

    model.model.register_forward_hook(keep_logits)
    chunked, chunked_stats = model.generate_ids([prompt], 8)
    first_chunked = logits[0]
    logits.clear()
    monkeypatch.setattr(denoise, "PREFILL_CHUNK", 10**9)
    whole, whole_stats = model.generate_ids([prompt], 8)
    assert chunked == whole
    # The first prediction after the prompt: the same numbers, up to float rounding.
    torch.testing.assert_close(first_chunked, logits[0], atol=1e-4, rtol=1e-4)
    assert chunked_stats.forward_passes == whole_stats.forward_passes + chunks
