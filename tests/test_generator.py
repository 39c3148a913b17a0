"""The generation backend on a tiny real checkpoint loaded through the real loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from backends.llm.causal import LOOP_NGRAM, CausalLMGenerator, penalise_repeats
from backends.llm.registry import DEFAULT_MODEL, load_generator, model_statuses
from ttdr.errors import ModelUnavailableError

MESSAGES = [{"role": "user", "content": "Summarise the evidence."}]


def test_a_checkpoint_folder_loads_and_generates_with_exact_stats(
    tiny_model: Path, tmp_path
) -> None:
    generator = load_generator(str(tiny_model), tmp_path / "cache")
    assert generator.info.family == "llama"
    assert "autoregressive" in generator.info.decoding
    result = generator.generate(MESSAGES, 20)
    stats = result.stats
    assert stats.tokens <= 20 and stats.prompt_tokens > 0 and stats.calls == 1
    # One forward per kept token, plus the one that produced the end-of-turn token, or the
    # forwards whose tokens were cut because they repeated an earlier run.
    extra = {"length": 0, "eos": 1, "repetition": LOOP_NGRAM}[result.finish_reason]
    expected = stats.tokens + extra
    assert stats.forward_passes == expected
    assert stats.tokens_per_forward <= 1.0


def test_greedy_decoding_is_deterministic_and_matches_a_full_recompute(tiny_model: Path) -> None:
    """The KV-cached loop must pick the same tokens as re-running the whole sequence."""
    import torch

    generator = CausalLMGenerator.from_folder(tiny_model)
    prompt = generator.encode_chat(MESSAGES)
    cached, _, _ = generator.decode(prompt, 12, temperature=0.0, seed=None)
    assert cached == generator.decode(prompt, 12, temperature=0.0, seed=None)[0]
    sequence = list(prompt)
    with torch.inference_mode():
        for _ in cached:
            logits = generator.model(input_ids=torch.tensor([sequence])).logits[0, -1]
            sequence.append(int(logits.argmax()))
    assert sequence[len(prompt) :] == cached


def test_sampling_is_repeatable_with_a_seed(tiny_model: Path) -> None:
    generator = CausalLMGenerator.from_folder(tiny_model)
    first = generator.generate(MESSAGES, 16, temperature=1.0, seed=7).text
    assert generator.generate(MESSAGES, 16, temperature=1.0, seed=7).text == first


def test_a_folder_without_config_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelUnavailableError, match=r"no config\.json"):
        load_generator(str(tmp_path / "empty"), tmp_path / "cache")


def test_an_unknown_model_name_lists_what_exists(tmp_path: Path) -> None:
    with pytest.raises(ModelUnavailableError, match=DEFAULT_MODEL):
        load_generator("no-such-model", tmp_path / "cache")


def test_a_model_without_chat_template_is_refused(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    copy = Path(shutil.copytree(tiny_model, tmp_path / "no-template"))
    (copy / "chat_template.jinja").unlink(missing_ok=True)
    config = json.loads((copy / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (copy / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ModelUnavailableError, match="chat template"):
        CausalLMGenerator.from_folder(copy)


def test_the_registry_reports_the_default_model_as_not_downloaded(tmp_path: Path) -> None:
    (status,) = [s for s in model_statuses(tmp_path) if s.spec.name == DEFAULT_MODEL]
    assert not status.downloaded
    assert "autoregressive" in status.spec.decoding


def test_a_looping_generation_is_cut_at_the_repeat(tiny_model: Path) -> None:
    generator = CausalLMGenerator.from_folder(tiny_model)
    prompt = generator.encode_chat(MESSAGES)
    tokens, forwards, finish = generator.decode(prompt, 400, temperature=0.0, seed=None)
    if finish == "repetition":  # random weights loop quickly under greedy decoding
        runs = [tuple(tokens[i : i + LOOP_NGRAM]) for i in range(len(tokens) - LOOP_NGRAM + 1)]
        assert len(runs) == len(set(runs)), "no repeated run may survive the cut"
        assert forwards == len(tokens) + LOOP_NGRAM
    else:
        assert finish in ("eos", "length")


def test_the_repetition_penalty_only_touches_generated_tokens() -> None:
    import torch

    logits = torch.tensor([2.0, -2.0, 1.0, 3.0])
    penalised = penalise_repeats(logits, [0, 1, 1], 2.0)
    assert penalised.tolist() == [1.0, -4.0, 1.0, 3.0]
    assert penalise_repeats(logits, [0], 1.0) is logits
