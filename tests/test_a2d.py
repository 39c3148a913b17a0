"""The A2D trainer at toy size, on a tiny random LLaMA-layout checkpoint (no real model)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from agents import prompts
from backends.llm.a2d.adapter import (
    MASK_TOKEN,
    ConvertedModel,
    inner_model,
    load_converted,
    save_adapter,
)
from backends.llm.a2d.data import (
    PromptBuilder,
    ShardWriter,
    TextDoc,
    is_held_apart,
    read_records,
    split_chunks,
)
from backends.llm.a2d.meta import base_fingerprint, read_meta
from backends.llm.a2d.objective import (
    CertaintyForcing,
    ObjectiveConfig,
    attention_mask,
    block_diffusion_loss,
    build_batch,
    final_hidden,
    fit_answer,
    frozen_prefix,
    make_document,
    pack_rows,
)
from backends.llm.a2d.trainer import CHECKPOINT, FitConfig, Trainer
from backends.llm.denoise import Canvas, Denoiser
from backends.llm.tiny import CHATML_TOKENS, _write_tokenizer, write_tiny_llama
from ttdr.errors import ModelUnavailableError, TrainingDataError

ADAPTER_NAME = "adapter.safetensors"
SMALL = FitConfig(
    block_size=4, rank=4, alpha=8, lr=5e-3, warmup_steps=1, row_tokens=160, rows=2,
    max_tokens=10**9, checkpoint_minutes=1e6, log_every=2, threads=1,
)  # fmt: skip


def _tiny_base(folder: Path, seed: int) -> Path:
    """A tiny LLaMA whose tokenizer, like SmolLM2's, has the special token used as the mask."""
    folder = write_tiny_llama(folder, seed=seed, layers=2)
    tokens = replace(CHATML_TOKENS, special=(*CHATML_TOKENS.special, MASK_TOKEN))
    tokenizer = _write_tokenizer(folder, tokens, vocab_size=400)
    config = json.loads((folder / "config.json").read_text())
    assert len(tokenizer) == config["vocab_size"]
    return folder


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny_base(tmp_path_factory.mktemp("a2d") / "tiny-base", seed=1)


@pytest.fixture(scope="module")
def data(base: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Self-distilled-shaped records: chat prompts and (here, arbitrary) answers ending in EOS."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    folder = tmp_path_factory.mktemp("a2d-data")
    generator = torch.Generator().manual_seed(0)
    records = []
    for i in range(40):
        text = f"Question {i}: what do research reports cite?"
        chat = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], add_generation_prompt=True, tokenize=False
        )
        prompt = tokenizer(chat, add_special_tokens=False)["input_ids"]
        # A learnable answer: a fixed phrase, so a few steps can lower the loss.
        answer = tokenizer("Reports cite their sources. ")["input_ids"] * 2
        answer = [*answer[: 8 + int(torch.randint(0, 10, (), generator=generator))], eos]
        records.append(
            {"id": f"{i:016x}", "kind": "answer", "source": "test", "prompt": prompt,
             "answer": answer, "finish": "eos"}
        )  # fmt: skip
    ShardWriter(folder).write(records)
    return folder


def _trainer(
    base: Path,
    data: Path,
    out: Path,
    init_adapter: Path | None = None,
    log=lambda _line: None,
    **changes,
) -> Trainer:
    config = replace(SMALL, **changes)
    return Trainer(base, data, out, config, log=log, init_adapter=init_adapter)


# -- the objective ---------------------------------------------------------------------------


def test_answers_become_whole_blocks() -> None:
    config = ObjectiveConfig(block_size=4, mask_id=99, eos_id=2)
    assert fit_answer([5, 6, 2], config) == [5, 6, 2, 2]  # finished: padded with end tokens
    assert fit_answer([5, 6, 7, 8, 9, 10], config) == [5, 6, 7, 8]  # cut off: whole blocks only
    assert make_document([1] * 10, [5, 6, 2], config, capacity=12) is None  # no room


def test_mask_layout_matches_the_engine_rules() -> None:
    """One document, prompt 3 + answer 4 (block 2): clean is block-causal with the answer in
    fresh blocks; a noisy block sees strictly earlier clean blocks and itself."""
    config = ObjectiveConfig(block_size=2, mask_id=9, eos_id=2)
    doc = make_document([1, 3, 4], [5, 6, 7, 2], config, capacity=100)
    batch = build_batch([[doc]], config, torch.Generator().manual_seed(0), pad_id=0)
    mask = batch.mask[0, 0]
    # clean slots 0..6: blocks [0,0,1 | 2,2,3,3]; noisy copy 1: 7..10, copy 2: 11..14
    assert mask[2, :3].tolist() == [True, True, True] and not mask[1, 2]
    assert mask[3, :5].all() and not mask[3, 5]  # first answer block sees the prompt
    noisy = 9  # copy 1, answer block 1 (answer slots 2, 3)
    assert mask[noisy, :5].all() and not mask[noisy, 5:7].any()  # clean blocks < its own
    assert mask[noisy, 9:11].all() and not mask[noisy, 7:9].any()  # its own noisy block only
    assert not mask[noisy, 11:].any()  # never the other copy
    assert not mask[:7, 7:].any()  # clean never sees noisy
    # Every answer token is scored exactly once; block starts come from the clean stream.
    assert sorted(batch.target.tolist()) == sorted([5, 6, 7, 2])
    starts = batch.source[batch.boundary].tolist()
    assert starts == [2, 4]  # last prompt slot; last slot of the first clean answer block


def test_suffix_masks_train_only_the_states_left_to_right_filling_meets() -> None:
    """Block 4, answer of 4 blocks: each copy masks each block from a cut onwards; a token is
    a target in a copy only where its block's slots from the cut are masked."""
    config = ObjectiveConfig(block_size=4, mask_id=99, eos_id=2, masks="suffix")
    answer = list(range(10, 26))
    doc = make_document([1, 3, 4], answer, config, capacity=200)
    batch = build_batch([[doc]], config, torch.Generator().manual_seed(3), pad_id=0)
    tokens = batch.tokens[0].tolist()
    p, a = 3, len(answer)
    cuts_seen = set()
    for copy in range(2):
        noisy = tokens[p + a + copy * a : p + a + (copy + 1) * a]
        for block in range(4):
            slots = noisy[block * 4 : block * 4 + 4]
            masked = [t == 99 for t in slots]
            cut = masked.index(True)  # at least the last slot is masked
            assert masked == [False] * cut + [True] * (4 - cut)  # a suffix
            assert slots[:cut] == answer[block * 4 : block * 4 + cut]  # the rest is clean
            cuts_seen.add(cut)
    assert len(cuts_seen) > 1  # cuts vary
    # Every block's first token from the clean stream, the masked others once per copy.
    expected = [answer[j] for j in range(0, a, 4)]
    for copy in range(2):
        noisy = tokens[p + a + copy * a : p + a + (copy + 1) * a]
        expected += [answer[j] for j in range(a) if j % 4 and noisy[j] == 99]
    assert sorted(batch.target.tolist()) == sorted(expected)
    # The random recipe scores every answer token exactly once (complementary copies).
    random = ObjectiveConfig(block_size=4, mask_id=99, eos_id=2)
    again = build_batch([[doc]], random, torch.Generator().manual_seed(3), pad_id=0)
    assert sorted(again.target.tolist()) == answer
    with pytest.raises(ValueError, match="unknown masks 'prefix'; known: random, suffix"):
        ObjectiveConfig(block_size=4, mask_id=99, eos_id=2, masks="prefix")


def test_packing_keeps_documents_apart() -> None:
    docs = torch.tensor([[0, 0, 1, 1]])
    streams = torch.zeros(1, 4, dtype=torch.long)
    blocks = torch.tensor([[0, 1, 0, 1]])
    mask = attention_mask(docs, streams, blocks)[0, 0]
    assert not mask[2:, :2].any() and mask[3, 2]
    rows = pack_rows(
        [make_document([1] * 4, [2] * 4, ObjectiveConfig(4, 9, 2), 100)] * 3, 24, copies=2
    )
    assert [len(r) for r in rows] == [1, 1, 1]  # 16 slots each; two do not fit in 24


def test_final_hidden_is_the_forward_pass(base: Path) -> None:
    from backends.llm.loader import load_checkpoint

    model = load_checkpoint(base).model
    tokens = torch.randint(0, 50, (2, 9))
    positions = torch.arange(9).expand(2, 9)
    mask = torch.ones(9, 9, dtype=torch.bool).tril()[None, None]
    expected = model(tokens, positions, mask)
    got = model.lm_head(final_hidden(model, tokens, positions, mask)).float()
    torch.testing.assert_close(got, expected)


# -- training --------------------------------------------------------------------------------


def test_a_few_steps_lower_the_loss(base: Path, data: Path, tmp_path: Path) -> None:
    trainer = _trainer(base, data, tmp_path / "run")
    losses = [trainer.step()["loss"] for _ in range(12)]
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3


def test_bfloat16_training_casts_the_frozen_weights_once_for_the_same_loss_and_gradients(
    base: Path, data: Path, tmp_path: Path
) -> None:
    from backends.llm.a2d.adapter import store_frozen_projections

    trainer = _trainer(base, data, tmp_path / "run", bf16=True)
    documents = trainer.next_documents()
    masks = trainer.generator.get_state()
    model = inner_model(trainer.model)
    q = model.layers[0].attn.q
    assert q.get_base_layer().weight.dtype == torch.bfloat16
    assert q.lora_A["default"].weight.dtype == torch.float32  # trained in float32
    assert all(p.dtype == torch.float32 for p in trainer.params)
    cast_once, _, _ = trainer.loss_and_backward(documents)
    grads_once = [p.grad.clone() for p in trainer.params]
    # The same step with float32 frozen weights that autocast casts on every call:
    for module in model.modules():
        if hasattr(module, "get_base_layer") and module is not model:
            module.get_base_layer().weight.data = module.get_base_layer().weight.data.float()
    trainer.optimizer.zero_grad(set_to_none=True)
    trainer.generator.set_state(masks)
    per_call, _, _ = trainer.loss_and_backward(documents)
    assert torch.equal(cast_once.loss, per_call.loss)
    assert all(torch.equal(a, p.grad) for a, p in zip(grads_once, trainer.params, strict=True))
    assert len(store_frozen_projections(trainer.model, torch.bfloat16)) == 7 * model.args.num_layers


def test_a_step_document_by_document_equals_the_packed_rows(
    base: Path, data: Path, tmp_path: Path
) -> None:
    """The trainer computes each document alone; the packed rows are the reference: the same
    loss, the same gradient on every trainable tensor, the same masking RNG afterwards."""
    _trainer(base, data, tmp_path / "warm", max_steps=2).fit()
    adapter = tmp_path / "warm" / "adapter.safetensors"  # nonzero LoRA A and B
    packed = _trainer(base, data, tmp_path / "packed", init_adapter=adapter, row_tokens=320)
    alone = _trainer(base, data, tmp_path / "alone", init_adapter=adapter, row_tokens=320)
    batch = packed.next_batch()
    assert batch.tokens.shape[0] == SMALL.rows  # more than one document shares a row
    reference = block_diffusion_loss(inner_model(packed.model), batch, packed.mask_id)
    reference.loss.backward()
    documents = alone.next_documents()
    assert len(documents) > batch.tokens.shape[0]
    parts, answer_tokens, stream_tokens = alone.loss_and_backward(documents)
    assert (answer_tokens, stream_tokens) == (batch.answer_tokens, batch.stream_tokens)
    torch.testing.assert_close(parts.loss, reference.loss.detach(), rtol=1e-5, atol=1e-6)
    assert parts.masked == pytest.approx(reference.masked, rel=1e-5)
    assert parts.boundary == pytest.approx(reference.boundary, rel=1e-5)
    for a, b in zip(packed.params, alone.params, strict=True):
        assert a.grad is not None and a.grad.abs().sum() > 0
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6)
    assert torch.equal(packed.generator.get_state(), alone.generator.get_state())


def test_certainty_forcing_adds_the_entropy_of_the_masked_slots_predicted_right(
    base: Path, data: Path, tmp_path: Path
) -> None:
    """The term is the sharpened entropy of exactly the masked (non-boundary) slots whose
    argmax is the target, weighted and per token like the cross-entropy; weight 0 is the
    plain loss, bit for bit, and the gradient stays finite despite the mask column's -inf."""
    _trainer(base, data, tmp_path / "warm", max_steps=12).fit()  # some right predictions
    trainer = _trainer(base, data, tmp_path / "b", init_adapter=tmp_path / "warm" / ADAPTER_NAME)
    model = inner_model(trainer.model)
    batch = trainer.next_batch()
    plain = block_diffusion_loss(model, batch, trainer.mask_id)
    off = block_diffusion_loss(model, batch, trainer.mask_id, certainty=CertaintyForcing(0.0))
    forced = block_diffusion_loss(model, batch, trainer.mask_id, certainty=CertaintyForcing(2.0))
    assert torch.equal(off.loss, plain.loss)
    with torch.no_grad():
        hidden = final_hidden(model, batch.tokens, batch.positions, batch.mask)
        logits = model.lm_head(hidden.reshape(-1, hidden.shape[-1])[batch.source]).float()
        logits[:, trainer.mask_id] = float("-inf")
    right = (logits.argmax(-1) == batch.target) & ~batch.boundary
    assert 0 < int(right.sum()) < int((~batch.boundary).sum())  # both kinds are present
    entropy = torch.distributions.Categorical(logits=logits[right] / 0.5).entropy()
    assert forced.correct_count == int(right.sum())
    assert forced.correct_entropy == pytest.approx(float(entropy.mean()), rel=1e-4)
    expected = plain.loss + 2.0 * entropy.sum() / batch.target.numel()
    torch.testing.assert_close(forced.loss.detach(), expected, rtol=1e-5, atol=1e-6)
    confident = right & (logits.softmax(-1).max(-1).values > 0.9)
    assert forced.confident_count == int(confident.sum())
    forced.loss.backward()
    grads = [p.grad for p in trainer.params if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_certainty_forcing_makes_the_right_predictions_surer(
    base: Path, data: Path, tmp_path: Path
) -> None:
    """The same steps with the term on end with lower entropy on the held-out slots the model
    predicts right than with it off: what lets decoding commit more than one slot a step."""
    from backends.llm.a2d.validate import held_out_loss

    held = tmp_path / "held"
    ShardWriter(held).write([{**r, "id": f"held-{i}"} for i, r in enumerate(read_records(data))])
    scores = {}
    for weight in (0.0, 2.0):
        run = tmp_path / f"run-{weight}"
        _trainer(base, data, run, max_steps=12, certainty=weight).fit()
        scores[weight] = held_out_loss(base, run / ADAPTER_NAME, held)
        assert json.loads(run.joinpath("config.json").read_text())["certainty"] == weight
    assert scores[2.0]["correct_entropy"] < scores[0.0]["correct_entropy"]
    assert scores[2.0]["confident_share"] >= scores[0.0]["confident_share"]


def test_a_frozen_prompt_keeps_the_forward_and_changes_only_the_gradient(
    base: Path, data: Path, tmp_path: Path
) -> None:
    """prompt_grad=False: the prompt's slots run once without gradient into a KV cache; the
    answer slots' hidden states (so the loss) are the full forward's, the gradient differs."""
    _trainer(base, data, tmp_path / "warm", max_steps=2).fit()
    adapter = tmp_path / "warm" / "adapter.safetensors"
    full = _trainer(base, data, tmp_path / "full", init_adapter=adapter)
    frozen = _trainer(base, data, tmp_path / "frozen", init_adapter=adapter, prompt_grad=False)
    documents = full.next_documents()
    assert documents == frozen.next_documents()
    doc = documents[0]
    batch = build_batch([[doc]], full.objective, torch.Generator().manual_seed(1), full.pad_id)
    model = inner_model(full.model)
    with torch.no_grad():
        whole = final_hidden(model, batch.tokens, batch.positions, batch.mask)
        cut = frozen_prefix(doc, SMALL.block_size)
        split = final_hidden(model, batch.tokens, batch.positions, batch.mask, frozen=cut)
    assert 0 < cut < len(doc.prompt) and cut % SMALL.block_size == 0
    torch.testing.assert_close(split, whole[:, cut:], rtol=1e-5, atol=1e-5)
    a, _, _ = full.loss_and_backward(documents)
    b, _, _ = frozen.loss_and_backward(documents)
    torch.testing.assert_close(a.loss, b.loss, rtol=1e-5, atol=1e-6)
    grads = [(p.grad, q.grad) for p, q in zip(full.params, frozen.params, strict=True)]
    assert all(g is not None and h is not None for g, h in grads)
    assert any(not torch.allclose(g, h, rtol=1e-3, atol=1e-7) for g, h in grads)
    with pytest.raises(ValueError, match="frozen prefix"):  # a scored slot inside the prefix
        block_diffusion_loss(model, batch, full.mask_id, frozen=len(doc.prompt))


def test_a_killed_run_resumes_with_identical_state(base: Path, data: Path, tmp_path: Path) -> None:
    straight = _trainer(base, data, tmp_path / "straight", max_steps=6)
    history = straight.fit()
    first = _trainer(base, data, tmp_path / "resumed", max_steps=3)
    part = first.fit()
    assert (tmp_path / "resumed" / CHECKPOINT).is_file()
    second = _trainer(base, data, tmp_path / "resumed", max_steps=6)
    assert second.resumed and second.position.step == 3
    part += second.fit()
    assert [r["loss"] for r in part] == [r["loss"] for r in history]
    for a, b in zip(straight.params, second.params, strict=True):
        assert torch.equal(a, b)
    for a, b in zip(
        straight.optimizer.state_dict()["state"].values(),
        second.optimizer.state_dict()["state"].values(),
        strict=True,
    ):
        assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(
            a["exp_avg_sq"], b["exp_avg_sq"]
        )
    assert replace(straight.position, seconds=0) == replace(second.position, seconds=0)
    assert torch.equal(straight.generator.get_state(), second.generator.get_state())
    log = [json.loads(x) for x in (tmp_path / "resumed" / "train.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 6 and "tokens_per_s" in log[-1]


def test_a_new_run_warm_starts_from_an_adapter_and_its_counters(
    base: Path, data: Path, tmp_path: Path
) -> None:
    """A lost checkpoint (a new machine) costs the optimizer state, not the training."""
    first = _trainer(base, data, tmp_path / "first", max_steps=3)
    first.fit()
    adapter = tmp_path / "first" / "adapter.safetensors"
    lines: list[str] = []
    warm = {"max_steps": 5, "warmup_steps": 4, "init_adapter": adapter, "log": lines.append}
    second = _trainer(base, data, tmp_path / "second", **warm)
    assert not second.resumed
    for a, b in zip(first.params, second.params, strict=True):
        assert torch.equal(a, b)
    assert (second.position.step, second.position.tokens) == (3, first.position.tokens)
    assert any(json.loads(line).get("event") == "warm_start" for line in lines)
    record = second.step()
    assert record["lr"] == pytest.approx(SMALL.lr / 4)  # its own warm-up, from step 3
    second.fit()
    meta = read_meta(tmp_path / "second" / "adapter.safetensors")
    assert meta.training["steps"] == 5
    assert meta.training["lineage"]["steps"] == 3
    # A checkpoint in --out wins over --init-adapter: a restart resumes, it does not re-warm.
    again = _trainer(base, data, tmp_path / "second", **warm)
    assert again.resumed and again.position.step == 5


def test_a_warm_start_refuses_an_adapter_of_another_recipe(
    base: Path, data: Path, tmp_path: Path
) -> None:
    first = _trainer(base, data, tmp_path / "first", max_steps=1)
    first.fit()
    adapter = tmp_path / "first" / "adapter.safetensors"
    with pytest.raises(ModelUnavailableError, match=r"rank 4 \(this run: 8\)"):
        _trainer(base, data, tmp_path / "other", rank=8, init_adapter=adapter)
    other = _tiny_base(tmp_path / "other-base", seed=7)
    with pytest.raises(ModelUnavailableError, match="tiny-base"):
        _trainer(other, data, tmp_path / "elsewhere", init_adapter=adapter)


def test_records_appended_during_a_fit_join_the_next_epoch(
    base: Path, data: Path, tmp_path: Path
) -> None:
    shards = tmp_path / "data"
    records = read_records(data)
    ShardWriter(shards).write(records[:10])
    trainer = _trainer(base, shards, tmp_path / "run")
    while trainer.position.epoch == 0:
        trainer.step()
        if trainer.position.index >= 4 and len(read_records(shards)) == 10:
            ShardWriter(shards).write(records[10:25])  # `ttdr train a2d data` still running
    assert trainer.position.epoch == 1
    assert trainer.position.epoch_records == 25 and len(trainer.records) == 25


# -- the adapter -----------------------------------------------------------------------------


def test_adapter_round_trip_equals_base_plus_lora(base: Path, data: Path, tmp_path: Path) -> None:
    trainer = _trainer(base, data, tmp_path / "run")
    for _ in range(3):
        trainer.step()
    path = tmp_path / "adapter.safetensors"
    save_adapter(path, trainer.model, trainer.adapter_meta())
    converted = load_converted(base, path)
    assert isinstance(converted, ConvertedModel)
    assert read_meta(path).block_size == 4 and converted.facts.attention == "block_causal"
    tokens = torch.randint(0, 60, (2, 11))
    tokens[:, 5] = trainer.mask_id  # the trained mask embedding row takes part
    positions = torch.arange(11).expand(2, 11)
    mask = torch.ones(11, 11, dtype=torch.bool).tril()[None, None]
    trainer.model.eval()
    with torch.no_grad():
        lora = inner_model(trainer.model)(tokens, positions, mask)
        merged = converted.loaded.model(tokens, positions, mask)
    keep = torch.ones(lora.shape[-1], dtype=torch.bool)
    keep[trainer.mask_id] = False  # tied head: the mask row's logit is never used
    torch.testing.assert_close(merged[..., keep], lora[..., keep], rtol=1e-4, atol=1e-4)
    # The LoRA did change the model (the comparison is not trivially base == base).
    from backends.llm.loader import load_checkpoint

    with torch.no_grad():
        plain = load_checkpoint(base).model(tokens, positions, mask)
    assert not torch.allclose(plain[..., keep], lora[..., keep], atol=1e-4)


def test_converted_model_decodes_through_the_exact_cache(
    base: Path, data: Path, tmp_path: Path
) -> None:
    trainer = _trainer(base, data, tmp_path / "run", max_steps=2)
    trainer.fit()
    converted = load_converted(base, tmp_path / "run" / "adapter.safetensors")
    from backends.llm.decoding import DecodePolicy

    results = []
    for cache in ("none", "exact"):
        denoiser = Denoiser(converted.loaded.model, converted.facts, cache=cache)
        prompt = torch.tensor([[5, 9, 13, 20, 7, 33, 2]])
        tokens = torch.cat([prompt, torch.full((1, 8), converted.facts.mask_id)], dim=1)
        canvas = Canvas(tokens, torch.ones_like(tokens, dtype=torch.bool), gen_start=7)
        policy = DecodePolicy(block_size=4, threshold=0.5)
        denoiser.fill(canvas, [(7, 11), (11, 15)], policy)
        results.append(canvas.tokens)
    assert torch.equal(results[0], results[1])


def test_loader_refuses_an_adapter_for_another_base(base: Path, data: Path, tmp_path: Path) -> None:
    trainer = _trainer(base, data, tmp_path / "run", max_steps=1)
    trainer.fit()
    other = _tiny_base(tmp_path / "other-base", seed=7)
    assert base_fingerprint(other) != base_fingerprint(base)
    with pytest.raises(ModelUnavailableError, match="tiny-base") as caught:
        load_converted(other, tmp_path / "run" / "adapter.safetensors")
    assert "other-base" in str(caught.value)
    # Same folder name, other weights (the default model converted by another transformers).
    renamed = _tiny_base(tmp_path / "elsewhere" / "tiny-base", seed=7)
    with pytest.raises(ModelUnavailableError, match="other weights of 'tiny-base'"):
        load_converted(renamed, tmp_path / "run" / "adapter.safetensors")


# -- data ------------------------------------------------------------------------------------


def test_prompts_are_a_deterministic_stream_with_a_held_apart_split() -> None:
    text = (
        "Block diffusion decodes several tokens per forward pass. It keeps an exact cache. "
    ) * 20
    docs = [TextDoc("corpus", "a.md", "Block diffusion models", tuple(split_chunks(text)))]
    first, again = (PromptBuilder(docs, prompts, seed=3) for _ in range(2))
    specs = [first.build(i) for i in range(60)]
    assert [s.id for s in specs] == [again.build(i).id for i in range(60)]
    assert {s.kind for s in specs} >= {"answer", "plan", "revise"}
    assert any(is_held_apart(s.id) for s in [first.build(i) for i in range(400)])


def test_shards_survive_a_torn_last_line(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path)
    writer.write([{"id": "a"}, {"id": "b"}])
    shard = next(tmp_path.glob("shard-*.jsonl"))
    shard.write_text(shard.read_text() + '{"id": "c", "pro')  # killed mid-write
    assert [r["id"] for r in read_records(tmp_path)] == ["a", "b"]
    ShardWriter(tmp_path).write([{"id": "d"}])
    assert [r["id"] for r in read_records(tmp_path)] == ["a", "b", "d"]


def test_data_generation_appends_answers_and_keeps_the_thread_count_asked_for(
    base: Path, tmp_path: Path
) -> None:
    """`ttdr train a2d data` on a tiny model: shards of the model's own answers, a rerun adds
    to them without repeating a prompt, and `threads` survives the engine's own sizing."""
    from backends.llm.threads import choose_threads
    from ttdr.api import a2d_data
    from ttdr.config import Settings

    corpus = Path(__file__).resolve().parents[1] / "examples" / "corpus"
    out = tmp_path / "data"
    asked = choose_threads().threads + 1  # what the engine would not pick by itself
    before = torch.get_num_threads()
    try:
        stats = a2d_data(
            Settings(), out, 20, model=str(base), sources=[corpus], batch_size=2, threads=asked,
            log=lambda _line: None,
        )  # fmt: skip
        assert torch.get_num_threads() == asked
    finally:
        torch.set_num_threads(before)
    first = read_records(out)
    assert len(first) == stats["records"] >= 2 and stats["answer_tokens"] >= 20
    assert 0 <= stats["prefill_padding_share"] < 1
    assert all(r["prompt"] and r["answer"] and r["source"] == str(corpus) for r in first)
    more = a2d_data(
        Settings(), out, stats["answer_tokens"] + 1, model=str(base), sources=[corpus],
        batch_size=2, log=lambda _line: None,
    )  # fmt: skip
    records = read_records(out)
    assert more["records"] == len(records) > len(first)
    assert records[: len(first)] == first
    assert len({r["id"] for r in records}) == len(records)


def test_a_data_folder_keeps_one_repetition_penalty_and_the_confidence_of_its_answers(
    base: Path, tmp_path: Path
) -> None:
    """The penalty answers were written with is recorded; appending with another is refused,
    naming both, with the records kept; unpenalised greedy answers are all the base's argmax,
    which the confidence report measures."""
    from ttdr.api import a2d_data, a2d_target_confidence
    from ttdr.config import Settings

    corpus = Path(__file__).resolve().parents[1] / "examples" / "corpus"
    out = tmp_path / "greedy"
    options = dict(model=str(base), sources=[corpus], batch_size=2, log=lambda _line: None)
    stats = a2d_data(Settings(), out, 20, repetition_penalty=1.0, **options)
    assert stats["repetition_penalty"] == 1.0
    assert json.loads((out / "stats.json").read_text())["repetition_penalty"] == 1.0
    written = read_records(out)
    with pytest.raises(TrainingDataError, match=r"repetition penalty 1\.0, not 1\.3"):
        a2d_data(Settings(), out, 200, repetition_penalty=1.3, **options)
    assert read_records(out) == written
    greedy = a2d_target_confidence(Settings(), out, model=str(base))
    assert greedy["repetition_penalty"] == 1.0 and greedy["records"] == len(written)
    # The reply's end token (appended to finished answers) is not always the argmax.
    assert greedy["argmax_share"] >= 1 - greedy["records"] / greedy["tokens"]
    assert 0 <= greedy["pairs_above_0.9"] <= greedy["share_above_0.9"] <= 1
    penalised = tmp_path / "penalised"
    a2d_data(Settings(), penalised, 20, repetition_penalty=3.0, **options)
    moved = a2d_target_confidence(Settings(), penalised, model=str(base))
    assert moved["argmax_share"] < greedy["argmax_share"]


# -- the converted preset ----------------------------------------------------------------------


@pytest.fixture
def converted_preset(base: Path, data: Path, tmp_path: Path, monkeypatch) -> tuple[Path, Path]:
    """A preset like `smollm2-135m-a2d` over the tiny base: its folder in a model cache and a
    shipped (bfloat16) adapter from a real two-step fit."""
    import shutil

    from backends.llm.registry import PRESETS, Preset
    from ttdr.api import a2d_ship

    trainer = _trainer(base, data, tmp_path / "run", max_steps=2)
    trainer.fit()
    cache = tmp_path / "cache"
    shutil.copytree(base, cache / "tiny-base")
    shipped, _ = a2d_ship(tmp_path / "run" / "adapter.safetensors", tmp_path / "ship" / "a.st")
    preset = Preset(
        name="tiny-a2d", family="llama", source="a test", description="a test",
        folder_name="tiny-base", adapter=shipped,
    )  # fmt: skip
    monkeypatch.setitem(PRESETS, "tiny-a2d", preset)
    return cache, shipped


def test_a_converted_preset_loads_merged_and_decodes_with_the_adapters_facts(
    converted_preset: tuple[Path, Path],
) -> None:
    from backends.llm.a2d.evaluate import converted_engine
    from backends.llm.registry import PRESETS, load_generator, model_facts, preset_decoding

    cache, shipped = converted_preset
    engine = load_generator("tiny-a2d", cache)
    meta = read_meta(shipped)
    assert (engine.facts.attention, engine.facts.block_size) == ("block_causal", 4)
    assert engine.facts.mask_id == meta.mask_id and engine.policy.threshold == 0.9
    assert engine.policy.fallback == "leftmost"
    assert engine.denoiser.cache_mode == "exact"
    # What `ttdr models` says comes from the adapter's metadata alone, and agrees.
    assert model_facts("tiny-a2d", cache) == engine.facts
    assert preset_decoding(PRESETS["tiny-a2d"]).startswith("block diffusion: block 4")
    # The preset (fused projections) writes what the adapter merged by hand does.
    direct = converted_engine(
        load_converted(cache / "tiny-base", shipped), 0.9, 1.0, "direct", "leftmost"
    )
    chat = [{"role": "user", "content": "What do research reports cite?"}]
    assert (
        engine.generate(chat, max_new_tokens=12).text
        == direct.generate(chat, max_new_tokens=12).text
    )
    base_engine = load_generator(str(cache / "tiny-base"), cache)
    assert base_engine.facts.attention == "causal"  # the base stays available, autoregressive


def test_the_eval_decodes_every_mode_on_the_same_prompts(converted_preset) -> None:
    from backends.llm.a2d.evaluate import evaluate_adapter

    cache, shipped = converted_preset
    report = evaluate_adapter(
        cache / "tiny-base", shipped, None, prompts=0, factual=2, repetition_penalty=1.1,
        dtype="float32", log=lambda _line: None,
    )  # fmt: skip
    assert report["repetition_penalty"] == 1.1
    assert (report["dtype"], report["linear_layers"]) == ("float32", "float")
    factual = report["sets"]["factual"]
    assert factual["prompts"] == 2
    modes = factual["modes"]
    assert set(modes) == {
        "ar", "threshold_0.9", "threshold_0.9_leftmost", "threshold_0.7",
        "threshold_0.7_leftmost",
    }  # fmt: skip
    assert modes["ar"]["agreement_with_ar"] == modes["ar"]["exact_match_with_ar"] == 1.0
    for result in modes.values():
        assert result["tokens"] > 0 and result["tokens_per_forward"] > 0
        assert result["nll_under_base"] > 0
    certainty = modes["ar"]["base_certainty"]  # block 4 preset: blocks 4 and 8
    assert set(certainty) == {
        "share_above",
        "tokens_per_forward_block_4",
        "tokens_per_forward_block_8",
    }
    for threshold in ("0.9", "0.7"):
        assert 0.0 <= certainty["share_above"][threshold] <= 1.0
        assert 1.0 <= certainty["tokens_per_forward_block_4"][threshold] <= 4.0
    assert certainty["share_above"]["0.7"] >= certainty["share_above"]["0.9"]


def test_the_certainty_reference_commits_the_leftmost_slot_and_every_surer_one() -> None:
    from backends.llm.a2d.certainty import certainty_report, forwards_needed

    sure, unsure = 0.95, 0.5
    # One block of 4: step 1 commits slot 0 and the sure slots 1 and 3; step 2 commits slot 2.
    assert forwards_needed([unsure, sure, unsure, sure], 4, 0.9) == 2
    # Nothing sure: one slot per forward, as autoregressive decoding.
    assert forwards_needed([unsure] * 6, 4, 0.9) == 6
    # Everything sure: one forward per block, the last one short (4 + 2 tokens).
    assert forwards_needed([sure] * 6, 4, 0.9) == 2
    assert forwards_needed([sure] * 6, 1, 0.9) == 6
    report = certainty_report([[unsure, sure, unsure, sure], [sure] * 4], (4,), (0.9, 0.4))
    assert report["share_above"] == {"0.9": 0.75, "0.4": 1.0}
    assert report["tokens_per_forward_block_4"] == {"0.9": round(8 / 3, 3), "0.4": 4.0}


def test_a_converted_preset_without_its_adapter_says_so(converted_preset) -> None:
    from backends.llm.registry import load_generator
    from ttdr.api import check_model

    cache, shipped = converted_preset
    shipped.unlink()
    check = check_model("tiny-a2d", cache)
    assert check.state == "missing" and str(shipped) in check.message
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        load_generator("tiny-a2d", cache)


def test_a_shipped_adapter_is_the_fits_in_bfloat16_and_merges_to_nearly_the_same_model(
    base: Path, data: Path, tmp_path: Path
) -> None:
    from safetensors import safe_open

    from backends.llm.a2d.adapter import ship_adapter

    trainer = _trainer(base, data, tmp_path / "run", max_steps=2)
    trainer.fit()
    source = tmp_path / "run" / "adapter.safetensors"
    shipped = tmp_path / "shipped.safetensors"
    assert ship_adapter(source, shipped) == read_meta(source) == read_meta(shipped)
    with safe_open(shipped, framework="pt") as handle:
        assert {handle.get_tensor(k).dtype for k in handle.keys()} == {torch.bfloat16}  # noqa: SIM118
    tokens = torch.randint(0, 60, (1, 9))
    positions = torch.arange(9)[None]
    with torch.no_grad():
        full = load_converted(base, source).loaded.model(tokens, positions)
        half = load_converted(base, shipped).loaded.model(tokens, positions)
    torch.testing.assert_close(half, full, rtol=0, atol=2e-2)


def test_the_shipped_adapter_is_in_the_repository_for_the_default_base() -> None:
    """A fresh install needs only the registry package and this file (no other download)."""
    from backends.llm.registry import CONVERTED_MODEL, DEFAULT_MODEL, PRESETS

    preset = PRESETS[CONVERTED_MODEL]
    assert preset.adapter is not None and preset.adapter.is_file()
    assert preset.adapter.stat().st_size <= 25_000_000
    assert preset.folder_name == PRESETS[DEFAULT_MODEL].folder_name
    meta = read_meta(preset.adapter)
    assert (meta.base, meta.block_size, meta.attention) == (
        "smollm2-135m-instruct", 4, "block_causal",
    )  # fmt: skip
    assert meta.training["answer_tokens"] > 0


def test_the_step_bench_times_both_layouts_on_the_same_documents_and_trains_nothing(
    base: Path, data: Path, tmp_path: Path
) -> None:
    from backends.llm.a2d.step_bench import compare_step_layouts

    trainer = _trainer(base, data, tmp_path / "bench", row_tokens=320)
    before = [p.detach().clone() for p in trainer.params]
    report = compare_step_layouts(trainer, steps=2)
    assert report["steps"] == 2 and min(report["speedup_vs_packed"].values()) > 0
    assert set(report["s_per_step"]) == {
        "packed", "documents", "documents_frozen_prompt", "documents_frozen_prompt_bf16"
    }  # fmt: skip
    # The same documents and masks in both precisions: close losses.
    fp32, bf16 = report["frozen_prompt_loss"]["float32"], report["frozen_prompt_loss"]["bfloat16"]
    assert fp32 > 0 and abs(bf16 - fp32) / fp32 < 0.05 and not trainer.config.bf16
    # Padding of the shorter row is computed by the packed layout, never by the other.
    assert report["slots_per_step"]["documents"] <= report["slots_per_step"]["packed"]
    assert trainer.position.index > 0 and trainer.position.step == 0
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.params, strict=True))


def test_the_held_out_loss_falls_with_training_and_leaves_out_training_prompts(
    base: Path, data: Path, tmp_path: Path
) -> None:
    from backends.llm.a2d.validate import held_out_loss

    held = tmp_path / "held"
    records = read_records(data)[:8]
    ShardWriter(held).write([{**r, "id": f"held-{i}"} for i, r in enumerate(records)])
    scores = []
    for steps in (1, 12):
        run = tmp_path / f"run-{steps}"
        _trainer(base, data, run, max_steps=steps).fit()
        scores.append(held_out_loss(base, run / "adapter.safetensors", held, exclude=data))
    assert scores[0]["records"] == scores[1]["records"] == 8
    assert scores[0]["scored_tokens"] == scores[1]["scored_tokens"]  # the same masks
    assert scores[1]["loss"] < scores[0]["loss"] and scores[1]["steps"] == 12
    suffix = held_out_loss(base, run / "adapter.safetensors", held, exclude=data, masks="suffix")
    assert suffix["masks"] == "suffix" and suffix["records"] == 8
    assert suffix["scored_tokens"] != scores[1]["scored_tokens"]  # other mask states
    # The training shards themselves are all excluded: nothing is left to score.
    with pytest.raises(TrainingDataError, match="no held-out records"):
        held_out_loss(base, tmp_path / "run-1" / "adapter.safetensors", data, exclude=data)
    with pytest.raises(TrainingDataError, match="ttdr train a2d data --out"):
        _trainer(base, tmp_path / "no-shards", tmp_path / "run-empty")


def test_a_torn_adapter_file_is_refused_in_one_line(base: Path, tmp_path: Path) -> None:
    torn = tmp_path / "adapter.safetensors"
    torn.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ModelUnavailableError, match="not a readable safetensors file"):
        read_meta(torn)
    with pytest.raises(ModelUnavailableError, match="copy it again"):
        load_converted(base, torn)
