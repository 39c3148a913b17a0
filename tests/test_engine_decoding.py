"""The dLLM engine on tiny random checkpoints of every family, loaded through the real loader.

Each optimised path is checked token for token against the plain reference on the same
weights: exact block caches against full recomputation, and the bidirectional prefix and dual
caches against it when they are refreshed at every step (the same refresh points).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from backends.llm.decoding import DecodePolicy, choose_commits
from backends.llm.denoise import Canvas
from backends.llm.engine import REWRITE_PROMPT, DiffusionEngine
from backends.llm.loader import load_checkpoint
from backends.llm.protocol import Editor, Span
from backends.llm.tiny import write_tiny_checkpoint

FAMILIES = ["llada", "dream", "fast_dllm_v2", "sdar", "llama"]
BLOCK_CAUSAL = ["fast_dllm_v2", "sdar", "llama"]
BIDIRECTIONAL = ["llada", "dream"]
MESSAGES = [{"role": "user", "content": "Plan a report on tides and their causes."}]
DOCUMENT = "Tides rise twice a day. The Moon pulls the oceans toward it. Coasts see the change."


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("families")
    return {family: write_tiny_checkpoint(root / family, family, seed=3) for family in FAMILIES}


@pytest.fixture(scope="module")
def writers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Weights (seed 5) with which every tiny family but LLaMA writes visible text into
    spans, so that comparing an edit's spans with the model's output tells them apart."""
    root = tmp_path_factory.mktemp("writers")
    return {family: write_tiny_checkpoint(root / family, family, seed=5) for family in FAMILIES}


def engine(checkpoints, family: str, **overrides) -> DiffusionEngine:
    loaded = load_checkpoint(checkpoints[family], dtype=torch.float32)
    return DiffusionEngine.from_loaded(loaded, **overrides)


def fill(model: DiffusionEngine, prompts: list[list[int]], new_tokens: int):
    """Denoise a whole generation canvas (no early stop at end tokens): the tokens and stats."""
    canvas, blocks = model.generation_canvas(prompts, new_tokens)
    stats = model.denoiser.fill(canvas, blocks, model.policy)
    generated = canvas.tokens[:, canvas.gen_start :]
    assert not bool((generated == model.facts.mask_id).any()) or model.facts.attention == "causal"
    return generated.tolist(), stats


def small_blocks(family: str) -> dict:
    """Blocks of 4 keep tiny bidirectional runs multi-block without long canvases."""
    return {"block_size": 4} if family in BIDIRECTIONAL else {}


@pytest.mark.parametrize("family", BLOCK_CAUSAL)
def test_the_exact_block_cache_equals_full_recomputation(checkpoints, family) -> None:
    prompt = engine(checkpoints, family).encode_chat(MESSAGES)
    cached, cached_stats = fill(engine(checkpoints, family, threshold=0.5), [prompt], 40)
    plain, plain_stats = fill(
        engine(checkpoints, family, threshold=0.5, cache="none"), [prompt], 40
    )
    assert cached == plain
    assert cached_stats.forward_passes == plain_stats.forward_passes  # same steps, less work


@pytest.mark.parametrize("family", BIDIRECTIONAL)
@pytest.mark.parametrize("cache", ["prefix", "dual"])
def test_bidirectional_caches_refreshed_every_step_equal_the_reference(
    checkpoints, family, cache
) -> None:
    reference = engine(checkpoints, family, cache="none", threshold=0.5, **small_blocks(family))
    prompt = reference.encode_chat(MESSAGES)
    expected, _ = fill(reference, [prompt], 16)
    cached = engine(checkpoints, family, cache=cache, threshold=0.5, **small_blocks(family))
    cached.denoiser.refresh = "step"
    assert fill(cached, [prompt], 16)[0] == expected


@pytest.mark.parametrize("family", BIDIRECTIONAL)
def test_a_block_refreshed_dual_cache_feeds_only_the_block_between_refreshes(
    checkpoints, family
) -> None:
    reference = engine(checkpoints, family, cache="none", threshold=1.0, **small_blocks(family))
    prompt = reference.encode_chat(MESSAGES)
    expected, reference_stats = fill(reference, [prompt], 16)
    dual = engine(checkpoints, family, cache="dual", threshold=1.0, **small_blocks(family))
    fed: list[int] = []
    hook = dual.model.register_forward_pre_hook(lambda _, args: fed.append(args[0].shape[1]))
    try:
        (reply,), stats = fill(dual, [prompt], 16)
    finally:
        hook.remove()
    assert stats.forward_passes == reference_stats.forward_passes  # one per token either way
    # What the cache saves is work per forward: each block of 4 costs one refresh of the
    # whole canvas, then steps that feed only the block's 4 slots.
    assert fed == [len(prompt) + 16, 4, 4, 4] * 4
    # Approximate: the first block is computed from a fresh refresh, so it matches exactly.
    assert reply[:4] == expected[0][:4]


@pytest.mark.parametrize("family", FAMILIES)
def test_threshold_one_commits_one_token_per_step_and_zero_a_whole_block(
    checkpoints, family
) -> None:
    prompt = engine(checkpoints, family).encode_chat(MESSAGES)
    one = engine(checkpoints, family, threshold=1.0, **small_blocks(family))
    canvas, blocks = one.generation_canvas([prompt], 12)
    stats = one.denoiser.fill(canvas, blocks, one.policy)
    assert set(stats.commits_per_step) == {1}
    zero = engine(checkpoints, family, threshold=0.0, **small_blocks(family))
    canvas, blocks = zero.generation_canvas([prompt], 12)
    stats = zero.denoiser.fill(canvas, blocks, zero.policy)
    sizes = [end - start for start, end in blocks]
    if zero.policy.sub_block_size:  # Fast-dLLM v2 fills a block one sub-block at a time
        sizes = [zero.policy.sub_block_size] * (sum(sizes) // zero.policy.sub_block_size)
    assert stats.commits_per_step == sizes


def test_fixed_steps_per_block_follow_the_linear_schedule(checkpoints) -> None:
    llada = engine(checkpoints, "llada", block_size=8)
    policy = llada.policy.with_(threshold=None, steps_per_block=3)
    canvas, blocks = llada.generation_canvas([llada.encode_chat(MESSAGES)], 16)
    stats = llada.denoiser.fill(canvas, blocks, policy)
    assert stats.commits_per_step == [3, 3, 2, 3, 3, 2]


@pytest.mark.parametrize("ranking", ["margin", "entropy", "random"])
def test_every_ranking_fills_the_canvas(checkpoints, ranking) -> None:
    dream = engine(checkpoints, "dream", block_size=4)
    policy = dream.policy.with_(threshold=None, steps_per_block=2, ranking=ranking)
    canvas, blocks = dream.generation_canvas([dream.encode_chat(MESSAGES)], 8)
    dream.denoiser.fill(canvas, blocks, policy, seed=1)
    assert not bool((canvas.tokens == dream.facts.mask_id).any())


@pytest.mark.parametrize("family", ["sdar", "llama", "llada"])
def test_batched_generation_with_left_padding_matches_one_at_a_time(checkpoints, family) -> None:
    model = engine(checkpoints, family, threshold=0.7, **small_blocks(family))
    short = model.encode_chat([{"role": "user", "content": "Tides?"}])
    long = model.encode_chat(MESSAGES)
    assert len(short) < len(long)
    together, _ = fill(model, [short, long], 12)
    assert together == [fill(model, [short], 12)[0][0], fill(model, [long], 12)[0][0]]


def model_fills(
    model: DiffusionEngine, document: str, spans: list[Span], instruction: str | None = None
) -> list[str]:
    """What the model writes into each span, from its own calls rather than the edit's: a
    bidirectional model denoises one canvas with every span masked where it stands (after
    the instruction's chat prompt when rewriting); the others continue the document before
    each span (or answer the rewrite prompt), earlier spans already filled."""

    def length(span: Span) -> int:
        original = document[span.start : span.end]
        return span.length if span.length != "auto" else model._span_length(original, "auto")

    if model.facts.attention != "bidirectional":
        fills: list[str] = []
        before, cursor = "", 0
        for span in spans:
            before += document[cursor : span.start]
            after, original = document[span.end :], document[span.start : span.end]
            if instruction is None:  # the document so far, continued as raw text
                (reply,), _ = model.generate_ids([model._encode(before)], length(span))
                text = model._decode(reply)
                if after.startswith("\n"):  # a blank that ends its line
                    text = text.lstrip("\n").split("\n", 1)[0]
            else:
                prompt = REWRITE_PROMPT.format(
                    instruction=instruction, before=before, span=original, after=after
                )
                text = model.generate([{"role": "user", "content": prompt}], length(span)).text
            fills.append(text)
            before, cursor = before + fills[-1], span.end
        return fills
    chat = [{"role": "user", "content": instruction}]
    ids = model.encode_chat(chat) if instruction else []
    ranges, cursor = [], 0
    for span in spans:
        ids += model._encode(document[cursor : span.start])
        ranges.append((len(ids), len(ids) + length(span)))
        ids += [model.facts.mask_id] * length(span)
        cursor = span.end
    ids += model._encode(document[cursor:])
    tokens = torch.tensor([ids])
    canvas = Canvas(tokens=tokens, valid=torch.ones_like(tokens, dtype=torch.bool), gen_start=0)
    size = model.policy.block_size
    blocks = [(s, min(s + size, end)) for start, end in ranges for s in range(start, end, size)]
    model.denoiser.fill(canvas, blocks, model.policy)
    drop = {*model.facts.eos_ids, model.facts.mask_id, model.pad_id}
    return [
        model.tokenizer.decode(
            [t for t in canvas.tokens[0, start:end].tolist() if t not in drop],
            skip_special_tokens=True,
        ).strip()
        for start, end in ranges
    ]


@pytest.mark.parametrize("family", FAMILIES)
def test_infill_writes_the_model_s_text_into_its_spans_and_keeps_the_rest(writers, family) -> None:
    model = engine(writers, family, **small_blocks(family))
    spans = [Span(0, 5, length=4), Span(24, 38, length="auto")]
    edit = model.infill(DOCUMENT, spans)
    first, second = model_fills(model, DOCUMENT, spans)
    assert edit.replacements == [first, second]
    # Outside the spans, the original document's own text, unchanged.
    assert edit.text == first + DOCUMENT[5:24] + second + DOCUMENT[38:]
    assert edit.stats.forward_passes > 0


@pytest.mark.parametrize("family", FAMILIES)
def test_rewrite_writes_the_model_s_text_into_its_span_and_keeps_the_rest(writers, family) -> None:
    model = engine(writers, family, **small_blocks(family))
    span, instruction = Span(24, 62), "Say it more formally."
    edit = model.rewrite(DOCUMENT, span, instruction)
    (new,) = model_fills(model, DOCUMENT, [span], instruction)
    assert edit.replacements == [new]
    assert edit.text == DOCUMENT[:24] + new + DOCUMENT[62:]


@pytest.mark.parametrize("family", ["llada", "sdar"])
def test_the_engine_is_an_editor_whatever_its_attention(checkpoints, family) -> None:
    """The agent edits in place only through what `isinstance(generator, Editor)` admits."""
    assert isinstance(engine(checkpoints, family), Editor)


def test_spans_outside_the_document_are_refused(checkpoints) -> None:
    with pytest.raises(ValueError, match="outside the document"):
        engine(checkpoints, "llada").infill(DOCUMENT, [Span(10, 500)])


@pytest.mark.parametrize("family", ["sdar", "dream"])
def test_streaming_yields_each_block_and_adds_up_to_the_reply(checkpoints, family) -> None:
    model = engine(checkpoints, family, threshold=0.3, **small_blocks(family))
    pieces = list(model.stream(MESSAGES, 16))
    assert "".join(pieces) == model.generate(MESSAGES, 16).text


def test_causal_scores_are_exact_and_diffusion_scores_repeatable(checkpoints) -> None:
    llama = engine(checkpoints, "llama")
    ids = llama._encode(DOCUMENT)
    with torch.inference_mode():
        length = len(ids)
        causal = torch.ones(length, length, dtype=torch.bool).tril()[None, None]
        logits = llama.model(torch.tensor([ids]), torch.arange(length)[None], causal)
    expected = torch.nn.functional.cross_entropy(logits[0, :-1], torch.tensor(ids[1:])).item()
    assert llama.score(DOCUMENT).nll_per_token == pytest.approx(expected, rel=1e-5)
    llada = engine(checkpoints, "llada")
    first = llada.score(DOCUMENT, samples=4, seed=1)
    assert first.nll_per_token == llada.score(DOCUMENT, samples=4, seed=1).nll_per_token
    assert first.stats.forward_passes == 4 and first.nll_per_token > 0


def test_leftmost_fallback_forces_the_first_masked_slot_not_the_surest() -> None:
    # Row 0: slot 0 is done, nothing passes 0.9, slot 2 is surest; row 1: slot 3 passes.
    confidence = torch.tensor([[0.99, 0.3, 0.8, 0.5], [0.2, 0.1, 0.4, 0.95]], dtype=torch.float64)
    masked = torch.tensor([[False, True, True, True], [True, True, True, True]])
    best = DecodePolicy(block_size=4, threshold=0.9)
    leftmost = best.with_(fallback="leftmost")
    assert choose_commits(confidence, confidence, masked, best, 1).tolist() == [
        [False, False, True, False],
        [False, False, False, True],
    ]
    assert choose_commits(confidence, confidence, masked, leftmost, 1).tolist() == [
        [False, True, False, False],
        [True, False, False, True],
    ]
    # Fixed-step policies rank as before: the fallback is a threshold policy's.
    steps = DecodePolicy(block_size=4, threshold=None, steps_per_block=2, fallback="leftmost")
    assert choose_commits(confidence, confidence, masked, steps, 1).tolist()[0] == [
        False,
        False,
        True,
        False,
    ]


def test_leftmost_fallback_at_threshold_one_fills_each_block_left_to_right(checkpoints) -> None:
    sdar = engine(checkpoints, "sdar", threshold=1.0)
    policy = sdar.policy.with_(fallback="leftmost")
    canvas, blocks = sdar.generation_canvas([sdar.encode_chat(MESSAGES)], 8)
    start, end = blocks[0]
    filled = []
    original = sdar.denoiser._window_logits

    def spy(canvas_, *args, **kwargs):
        row = canvas_.tokens[0, start:end] != sdar.facts.mask_id
        filled.append(int(row.sum()))
        assert row.tolist() == sorted(row.tolist(), reverse=True)  # a filled prefix
        return original(canvas_, *args, **kwargs)

    sdar.denoiser._window_logits = spy
    stats = sdar.denoiser.fill(canvas, [blocks[0]], policy)
    assert set(stats.commits_per_step) == {1}
    assert filled == list(range(end - start))
