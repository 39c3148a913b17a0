"""The engine's fast paths against their plain references, on tiny checkpoints of every family.

Exact paths (the static KV cache, fused projections, logits for only the slots a step reads)
must give the same tokens as the reference; int8 and int4 weights may drift, within bounds.
Speed itself is measured by `ttdr bench engine`, never here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from backends.llm.bandwidth import weight_bytes_per_forward
from backends.llm.engine import DiffusionEngine
from backends.llm.kv_cache import KVCache, StaticKVCache
from backends.llm.loader import decodes_packed, load_checkpoint
from backends.llm.packed import PackedLinear, packing_supported
from backends.llm.quantize import INT4_GROUP, INT4_MAX_ROWS, Int4Linear, Int8Linear
from backends.llm.tiny import write_tiny_checkpoint

FAMILIES = ["llada", "dream", "fast_dllm_v2", "sdar", "llama"]
BLOCK_CAUSAL = ["fast_dllm_v2", "sdar", "llama"]
MESSAGES = [{"role": "user", "content": "Plan a report on tides and their causes."}]
SHORT = [{"role": "user", "content": "Tides?"}]
TEXT = "Research reports cite their sources. The draft is revised with evidence from search."


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Seed 5: weights with which the tiny families write varied text (not one token)."""
    root = tmp_path_factory.mktemp("speed")
    return {family: write_tiny_checkpoint(root / family, family, seed=5) for family in FAMILIES}


def engine(folder: Path, *, fuse: bool = False, weights: str | None = None, **overrides):
    loaded = load_checkpoint(folder, dtype=torch.float32, fuse=fuse, weights=weights)
    small = {"block_size": 4} if loaded.facts.attention == "bidirectional" else {}
    return DiffusionEngine.from_loaded(loaded, **(small | overrides))


def fill(model: DiffusionEngine, prompts: list[list[int]], new_tokens: int):
    canvas, blocks = model.generation_canvas(prompts, new_tokens)
    stats = model.denoiser.fill(canvas, blocks, model.policy)
    return canvas.tokens[:, canvas.gen_start :].tolist(), stats


def prompts_of(model: DiffusionEngine) -> list[list[int]]:
    """Two prompts of different lengths, so the batch is left-padded."""
    return [model.encode_chat(MESSAGES), model.encode_chat(SHORT)]


@pytest.mark.parametrize("family", BLOCK_CAUSAL)
@pytest.mark.parametrize("threshold", [0.5, 1.0])
def test_the_static_cache_decodes_what_the_growing_cache_does(checkpoints, family, threshold):
    static = engine(checkpoints[family], threshold=threshold)
    growing = engine(checkpoints[family], threshold=threshold)
    growing.denoiser.static_cache = False
    prompts = prompts_of(static)
    fast, fast_stats = fill(static, prompts, 24)
    plain, plain_stats = fill(growing, prompts, 24)
    assert fast == plain
    assert fast_stats.forward_passes == plain_stats.forward_passes


def test_a_static_cache_holds_what_a_growing_cache_holds_after_each_call() -> None:
    """The exact cache's calls: a prefill, uncommitted drafts, a partial commit, a full one."""
    torch.manual_seed(0)
    static, growing = StaticKVCache(capacity=20), KVCache()
    for length, commit in [(6, True), (3, False), (3, False), (5, 2), (4, True), (2, 1)]:
        k, v = torch.randn(2, 1, 2, length, 8).unbind(0)
        for layer in range(2):
            fast = static.place(layer, k, v, None, commit)
            plain = growing.place(layer, k, v, None, commit)
            assert all(torch.equal(a, b) for a, b in zip(fast, plain, strict=True))
        assert static.length == growing.length
    assert static.length == 6 + 2 + 4 + 1


def test_a_static_cache_refuses_slots_and_overflow() -> None:
    cache = StaticKVCache(capacity=4)
    k = torch.zeros(1, 1, 3, 8)
    cache.place(0, k, k, None, True)
    with pytest.raises(ValueError, match="only appends"):
        cache.place(0, k, k, 0, False)
    with pytest.raises(ValueError, match="cannot hold 6"):
        cache.place(0, k, k, None, False)


@pytest.mark.parametrize("family", FAMILIES)
def test_fused_projections_decode_what_the_separate_ones_do(checkpoints, family) -> None:
    fused, plain = engine(checkpoints[family], fuse=True), engine(checkpoints[family])
    assert fused.model.layers[0].attn.qkv is not None
    assert not hasattr(fused.model.layers[0].mlp, "gate")
    prompts = prompts_of(plain)
    assert fill(fused, prompts, 16)[0] == fill(plain, prompts, 16)[0]
    tokens = torch.tensor([prompts[0]])
    positions = torch.arange(tokens.shape[1])[None]
    with torch.inference_mode():
        torch.testing.assert_close(
            fused.model(tokens, positions), plain.model(tokens, positions), rtol=1e-5, atol=1e-5
        )


@pytest.mark.parametrize("family", ["llama", "dream"])
def test_logits_for_some_slots_are_those_slots_of_the_full_logits(checkpoints, family) -> None:
    model = engine(checkpoints[family]).model
    tokens = torch.randint(0, 100, (2, 12))
    positions = torch.arange(12).expand(2, -1)
    with torch.inference_mode():
        full = model(tokens, positions)
        some = model(tokens, positions, logits_for=slice(7, 10))
    assert some.shape[1] == 3
    torch.testing.assert_close(some, full[:, 7:10])


def test_an_int8_linear_multiplies_by_its_dequantized_weights() -> None:
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96, bias=True)
    quantized = Int8Linear(linear)
    assert quantized.weight.dtype == torch.int8
    x = torch.randn(3, 5, 64)
    expected = x @ quantized.dequantized().T + linear.bias
    torch.testing.assert_close(quantized(x), expected, rtol=1e-4, atol=1e-4)
    # per-row scales keep the weight within half a step of the original
    step = quantized.scales[:, None] / 2
    assert bool(((quantized.dequantized() - linear.weight).abs() <= step + 1e-7).all())


@pytest.mark.parametrize("family", ["llama", "sdar", "dream"])
def test_int8_weights_keep_the_likelihood_within_two_percent(checkpoints, family) -> None:
    reference = engine(checkpoints[family])
    int8 = engine(checkpoints[family], fuse=True, weights="int8")
    assert isinstance(int8.model.lm_head, Int8Linear)
    assert isinstance(int8.model.layers[0].attn.qkv, Int8Linear)
    assert int8.model.embed.weight.dtype == torch.float32  # the embedding stays float
    plain_nll = reference.score(TEXT, seed=1).nll_per_token
    int8_nll = int8.score(TEXT, seed=1).nll_per_token
    assert int8_nll != plain_nll  # the weights did change
    assert abs(int8_nll - plain_nll) / plain_nll < 0.02


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_an_int4_linear_multiplies_by_its_dequantized_weights_on_both_paths(dtype) -> None:
    """Few rows go through the int4 kernel, many through the float copy: the same function."""
    torch.manual_seed(0)
    linear = torch.nn.Linear(64, 96, bias=True).to(dtype)
    quantized = Int4Linear(linear)
    weights = quantized.dequantized()
    for rows in (1, INT4_MAX_ROWS, INT4_MAX_ROWS + 3):
        x = torch.randn(2, rows, 64, dtype=dtype)
        expected = x.float() @ weights.T + linear.bias.float()
        tolerance = 1e-5 if dtype == torch.float32 else 2e-2
        torch.testing.assert_close(quantized(x).float(), expected, rtol=tolerance, atol=tolerance)
    # 16 levels per group of 32 inputs: within half a level (and the kernel's dtype) of the weight
    groups = linear.weight.float().reshape(96, -1, INT4_GROUP)
    half_level = (groups.amax(-1) - groups.amin(-1)) / 30
    error = (weights - linear.weight.float()).abs().reshape(96, -1, INT4_GROUP).amax(-1)
    assert bool((error <= half_level * 1.05 + 1e-3).all())


def test_int4_gives_back_weights_that_were_4_bit_blocks_already() -> None:
    """The default model's projections come from a Q4_1 GGUF: quantizing their de-quantized
    values again must lose nothing, which is why `auto` may decode that model in int4."""
    torch.manual_seed(1)
    codes = torch.randint(0, 16, (48, 64)).float()
    codes[:, ::INT4_GROUP] = 0  # Q4_1 spans each block's min..max with codes 0..15
    codes[:, 1::INT4_GROUP] = 15
    scales = torch.rand(48, 64 // INT4_GROUP, 1) * 0.01
    minimums = -torch.rand(48, 64 // INT4_GROUP, 1) * 0.05
    blocks = codes.reshape(48, -1, INT4_GROUP) * scales + minimums
    linear = torch.nn.Linear(64, 48, bias=False)
    linear.weight.data = blocks.reshape(48, 64)
    torch.testing.assert_close(Int4Linear(linear).dequantized(), linear.weight, rtol=0, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
def test_int4_weights_keep_the_likelihood_within_two_percent(checkpoints, family) -> None:
    reference = engine(checkpoints[family])
    int4 = engine(checkpoints[family], fuse=True, weights="int4")
    assert isinstance(int4.model.layers[0].attn.qkv, Int4Linear)
    assert isinstance(int4.model.layers[0].mlp.down, Int4Linear)
    assert not isinstance(int4.model.lm_head, Int4Linear)  # the head stays float
    plain_nll = reference.score(TEXT, seed=1).nll_per_token
    int4_nll = int4.score(TEXT, seed=1).nll_per_token
    assert int4_nll != plain_nll
    assert abs(int4_nll - plain_nll) / plain_nll < 0.02
    # decode steps (a row or a block) run on the int4 kernel and stay close to float replies
    float_tokens, _ = fill(engine(checkpoints[family], fuse=True), prompts_of(int4), 8)
    int4_tokens, _ = fill(int4, prompts_of(int4), 8)
    pairs = zip(float_tokens, int4_tokens, strict=True)
    same = sum(a == b for x, y in pairs for a, b in zip(x, y, strict=True))
    assert same / sum(len(row) for row in float_tokens) >= 0.5


def test_autoregressive_steps_feed_one_token_and_decode_what_feeding_two_does(checkpoints):
    """The AR path (causal, block size 1, logit shift) feeds only the token just decided: the
    block's own slot is predicted from the one before it and attended by nothing earlier."""
    one = engine(checkpoints["llama"])
    assert (one.facts.attention, one.policy.block_size) == ("causal", 1)
    two = engine(checkpoints["llama"])
    two.denoiser.skip_unread_slot = False
    uncached = engine(checkpoints["llama"], cache="none")
    fed: list[int] = []
    one.model.register_forward_pre_hook(lambda _, args: fed.append(args[0].shape[1]))
    prompts = prompts_of(one)
    fast, fast_stats = fill(one, prompts, 12)
    assert fill(two, prompts, 12)[0] == fast
    assert fill(uncached, prompts, 12)[0] == fast
    assert fed[0] == max(len(p) for p in prompts)  # the prefill (left-padded batch)
    assert fed[1:] == [1] * (fast_stats.forward_passes - 1)


needs_native_bf16 = pytest.mark.skipif(
    not packing_supported(torch.device("cpu"), torch.bfloat16),
    reason="oneDNN packs bfloat16 only on a CPU with AVX512-BF16 or AMX",
)


@needs_native_bf16
@pytest.mark.parametrize("rows", [1, 4, 16, 32])
def test_a_packed_linear_equals_the_plain_one_up_to_32_rows(rows) -> None:
    torch.manual_seed(0)
    for out_features, in_features in ((96, 64), (960, 576), (576, 1536)):
        linear = torch.nn.Linear(in_features, out_features, bias=False).to(torch.bfloat16)
        x = torch.randn(rows, in_features, dtype=torch.bfloat16)
        packed = PackedLinear(linear)
        assert torch.equal(packed(x), linear(x))
        assert torch.equal(packed(x.view(1, rows, -1)), linear(x)[None])
        assert packed.weight_bytes == linear.weight.numel() * 2


@needs_native_bf16
@pytest.mark.parametrize("family", ["llama", "sdar"])
def test_a_packed_model_decodes_what_the_unpacked_one_does(checkpoints, family, monkeypatch):
    """Short prompts keep every product at 32 rows or fewer, where packing is bit-exact."""
    packed = load_checkpoint(checkpoints[family], dtype=torch.bfloat16, fuse=True)
    assert isinstance(packed.model.lm_head, PackedLinear) and decodes_packed(packed.model)
    assert isinstance(packed.model.layers[0].attn.qkv, PackedLinear)
    assert packed.model.embed.weight.dtype == torch.bfloat16  # the table stays plain
    monkeypatch.setattr("backends.llm.packed.packing_supported", lambda *_: False)
    unpacked = load_checkpoint(checkpoints[family], dtype=torch.bfloat16, fuse=True)
    assert isinstance(unpacked.model.lm_head, torch.nn.Linear)
    fast, reference = DiffusionEngine.from_loaded(packed), DiffusionEngine.from_loaded(unpacked)
    prompts = [fast.encode_chat(SHORT)]
    assert len(prompts[0]) <= 32
    assert fill(fast, prompts, 12)[0] == fill(reference, prompts, 12)[0]
    # a tied head's packed copy is still one read per forward
    assert weight_bytes_per_forward(packed.model) == weight_bytes_per_forward(unpacked.model)


def test_packing_is_left_out_where_it_does_not_pay_or_is_not_asked_for(checkpoints) -> None:
    assert not packing_supported(torch.device("cpu"), torch.float32)
    assert not packing_supported(torch.device("meta"), torch.bfloat16)
    for fuse, dtype in ((True, torch.float32), (False, torch.bfloat16)):
        loaded = load_checkpoint(checkpoints["llama"], dtype=dtype, fuse=fuse)
        assert not decodes_packed(loaded.model)
        assert not any(isinstance(m, PackedLinear) for m in loaded.model.modules())
