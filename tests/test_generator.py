"""The default path: the registry loads a checkpoint folder into the dLLM engine, which is the
`Generator` the agent uses; an autoregressive checkpoint decodes with blocks of one token."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from backends.llm.families import FAMILIES
from backends.llm.registry import DEFAULT_MODEL, load_generator, model_facts, model_statuses
from backends.llm.repetition import LOOP_NGRAM, cut_at_loop, penalise_repeats
from ttdr.errors import ModelUnavailableError

MESSAGES = [{"role": "user", "content": "Summarise the evidence."}]


def test_a_checkpoint_folder_loads_into_the_engine_with_exact_stats(
    tiny_model: Path, tmp_path
) -> None:
    generator = load_generator(str(tiny_model), tmp_path / "cache")
    assert generator.info.family == "llama"
    assert "autoregressive" in generator.info.decoding
    result = generator.generate(MESSAGES, 20)
    stats = result.stats
    assert stats.tokens <= 20 and stats.prompt_tokens > 0 and stats.calls == 1
    assert stats.tokens_per_forward <= 1.0  # one token per forward at block size one


def test_greedy_decoding_equals_recomputing_the_whole_sequence(tiny_model: Path, tmp_path) -> None:
    """The engine's cached block-size-one loop picks what plain greedy decoding picks."""
    engine = load_generator(str(tiny_model), tmp_path / "cache", dtype="float32")
    prompt = engine.encode_chat(MESSAGES)
    (reply,), _ = engine.generate_ids([prompt], 12)
    sequence = list(prompt)
    with torch.inference_mode():
        for _ in range(12):
            length = len(sequence)
            causal = torch.ones(length, length, dtype=torch.bool).tril()[None, None]
            logits = engine.model(torch.tensor([sequence]), torch.arange(length)[None], causal)
            token = int(logits[0, -1].argmax())
            if token in engine.facts.eos_ids:
                break
            sequence.append(token)
    expected = cut_at_loop(sequence[len(prompt) :])[0]
    assert reply == expected


def test_sampling_is_repeatable_with_a_seed(tiny_model: Path, tmp_path) -> None:
    generator = load_generator(str(tiny_model), tmp_path / "cache")
    first = generator.generate(MESSAGES, 16, temperature=1.0, seed=7).text
    assert generator.generate(MESSAGES, 16, temperature=1.0, seed=7).text == first


def test_a_folder_without_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailableError, match=r"no config\.json"):
        load_generator(str(tmp_path / "empty"), tmp_path / "cache")


def test_an_unknown_model_name_lists_what_exists(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match=DEFAULT_MODEL):
        load_generator("no-such-model", tmp_path / "cache")


def test_a_preset_that_is_not_in_the_cache_says_where_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match="place the checkpoint folder") as error:
        load_generator("sdar-4b-chat", tmp_path / "cache")
    assert str(tmp_path / "cache" / "SDAR-4B-Chat") in str(error.value)


def test_a_model_without_chat_template_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_model, tmp_path / "no-template"))
    (copy / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((copy / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelUnavailableError, match="chat template"):
        load_generator(str(copy), tmp_path / "cache")


def test_the_registry_reports_the_default_model_as_not_downloaded(tmp_path: Path) -> None:
    (status,) = [s for s in model_statuses(tmp_path) if s.preset.name == DEFAULT_MODEL]
    assert not status.present and status.preset.fetch is not None


def test_model_facts_come_from_the_checkpoint_when_there_is_one(tmp_path: Path) -> None:
    from backends.llm.tiny import write_tiny_checkpoint

    folder = write_tiny_checkpoint(tmp_path / "fast", "fast_dllm_v2")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "bd_size": 16}))
    facts = model_facts(str(folder), tmp_path / "cache")
    assert (facts.block_size, facts.mask_token) == (16, config["mask_token_id"])
    assert facts.describe().startswith("block diffusion: block 16, sub-block 8")
    # Without a checkpoint folder: the family's own defaults.
    assert model_facts("fast-dllm-v2-7b", tmp_path / "cache") is FAMILIES["fast_dllm_v2"].facts
    assert model_facts("llada", tmp_path / "cache") is FAMILIES["llada"].facts


def test_a_loop_is_cut_at_its_second_occurrence() -> None:
    run = list(range(LOOP_NGRAM))
    tokens = [100, *run, *run, 7]
    assert cut_at_loop(tokens) == ([100, *run], True)
    assert cut_at_loop(run) == (run, False)


def test_the_repetition_penalty_only_touches_generated_tokens() -> None:
    logits = torch.tensor([2.0, -2.0, 1.0, 3.0])
    penalised = penalise_repeats(logits, [0, 1, 1], 2.0)
    assert penalised.tolist() == [1.0, -4.0, 1.0, 3.0]
    assert penalise_repeats(logits, [0], 1.0) is logits


def test_runs_of_one_process_share_a_loaded_model_until_its_files_change(
    tiny_model: Path, tmp_path, settings, tiny_config
) -> None:
    from backends.llm import shared
    from backends.llm.tiny import write_tiny_checkpoint
    from ttdr import Researcher

    shared.forget_all()
    first = Researcher(tiny_config, settings=settings)._load_generator()
    assert Researcher(tiny_config, settings=settings)._load_generator() is first

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    before = shared.shared_generator(str(copy), tmp_path / "cache")
    assert shared.shared_generator(str(copy), tmp_path / "cache") is before
    write_tiny_checkpoint(copy, "llama", seed=1)  # the user replaced the weights
    after = shared.shared_generator(str(copy), tmp_path / "cache")
    assert after is not before
    assert not torch.equal(next(after.model.parameters()), next(before.model.parameters()))

    # At most KEEP stay loaded: the least recently used one is loaded afresh.
    assert len(shared._loaded) == shared.KEEP
    assert Researcher(tiny_config, settings=settings)._load_generator() is not first
    shared.forget_all()
