"""The native loaders: tiny checkpoints of every family, written in their real layout, loaded
through `load_checkpoint`, and checked against transformers' own LLaMA / Qwen2 / Qwen3 code."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from backends.llm.families import FAMILIES, hf_model_args, llada_model_args
from backends.llm.loader import LoadedModel, load_checkpoint, tensor_files
from backends.llm.tiny import FAMILY_TOKENS, TINY_FAMILIES, write_tiny_checkpoint
from backends.llm.transformer import ModelArgs, Transformer
from ttdr.errors import ModelUnavailableError

DECODE_FACTS = {  # family: (attention, logit shift, block size, sub-block size)
    "llada": ("bidirectional", False, 32, None),
    "dream": ("bidirectional", True, 32, None),
    "fast_dllm_v2": ("block_causal", True, 32, 8),
    "sdar": ("block_causal", False, 4, None),
    "llama": ("causal", True, 1, None),  # autoregressive: position i-1 predicts token i
}
# Fast-dLLM's approximate dual cache for bidirectional attention; an exact one otherwise.
CACHES = {
    "llada": "dual",
    "dream": "dual",
    "fast_dllm_v2": "exact",
    "sdar": "exact",
    "llama": "exact",
}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("engine-checkpoints")
    # SDAR's real checkpoints are sharded: its tiny one is too, with an index.
    return {
        family: write_tiny_checkpoint(root / family, family, shards=2 if family == "sdar" else 1)
        for family in TINY_FAMILIES
    }


@pytest.fixture
def copy_of(checkpoints: dict[str, Path], tmp_path: Path):
    def copy(family: str) -> Path:
        return Path(shutil.copytree(checkpoints[family], tmp_path / family))

    return copy


@pytest.mark.parametrize("family", TINY_FAMILIES)
def test_every_family_loads_from_its_real_layout_and_is_detected(
    checkpoints: dict[str, Path], family: str
) -> None:
    loaded = load_checkpoint(checkpoints[family])
    config = json.loads((checkpoints[family] / "config.json").read_text())

    assert loaded.family.name == family
    attention, shift, block, sub_block = DECODE_FACTS[family]
    facts = loaded.facts
    assert (facts.attention, facts.logit_shift) == (attention, shift)
    assert (facts.block_size, facts.sub_block_size) == (block, sub_block)
    assert facts.eos_last == (family == "llada")  # LLaDA-Instruct alone floods with EOS
    assert facts.cache == CACHES[family]
    assert loaded.args.vocab_size == len(loaded.tokenizer)
    assert loaded.tokenizer.chat_template
    vocabulary = loaded.tokenizer.get_vocab()
    if family == "llama":
        assert facts.mask_token is None and facts.mask_is_placeholder
        assert facts.mask_id in facts.eos_ids  # empty slots hold an end id
    else:  # the tiny config's mask_token_id overrides the family's real (out-of-vocab) id
        assert facts.mask_id == config["mask_token_id"] == vocabulary[FAMILY_TOKENS[family].mask]
    assert facts.eos_ids == tuple(vocabulary[token] for token in loaded.family.eos_tokens)
    assert not any(p.requires_grad for p in loaded.model.parameters())
    assert loaded.model.embed.weight.dtype == torch.float32


def test_the_family_can_be_named_and_sharded_weights_load(checkpoints: dict[str, Path]) -> None:
    folder = checkpoints["sdar"]
    assert (folder / "model.safetensors.index.json").is_file()
    assert len({file.name for file in tensor_files(folder).values()}) == 2
    loaded = load_checkpoint(folder, family="sdar")
    assert loaded.args.head_dim == 32 != loaded.args.hidden_size // loaded.args.num_heads
    assert loaded.args.qk_norm and not loaded.args.attention_bias


def _reference_config(kind: str, args: ModelArgs):
    common = dict(
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_hidden_layers=args.num_layers,
        num_attention_heads=args.num_heads,
        num_key_value_heads=args.num_kv_heads,
        rms_norm_eps=args.rms_norm_eps,
        rope_parameters={"rope_type": "default", "rope_theta": args.rope_theta},
        tie_word_embeddings=args.tie_embeddings,
        max_position_embeddings=args.max_position_embeddings,
    )
    if kind == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**common))
    if kind == "qwen3":
        return Qwen3ForCausalLM(Qwen3Config(head_dim=args.head_dim, **common))
    return LlamaForCausalLM(LlamaConfig(head_dim=args.head_dim, **common))


def _checkpoint_tensors(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for name, file in tensor_files(folder).items():
        with safe_open(file, framework="pt") as opened:
            tensors[name] = opened.get_tensor(name)
    return tensors


def _in_transformers_names(loaded: LoadedModel) -> dict[str, torch.Tensor]:
    """The checkpoint's tensors under transformers' names (LLaDA's are renamed to LLaMA's)."""
    tensors = _checkpoint_tensors(loaded.folder)
    if loaded.family.name != "llada":
        return tensors
    ours = {loaded.family.checkpoint_name(n): n for n, _ in loaded.model.named_parameters()}
    return {FAMILIES["llama"].checkpoint_name(ours[name]): t for name, t in tensors.items()}


@pytest.mark.parametrize(
    ("family", "kind"),
    [
        ("llama", "llama"),
        ("llada", "llama"),  # LLaDA is a LLaMA block under OLMo names, without the causal mask
        ("dream", "qwen2"),
        ("fast_dllm_v2", "qwen2"),  # tied embeddings, as Fast_dLLM_v2_1.5B
        ("sdar", "qwen3"),
    ],
)
def test_logits_match_transformers_with_a_causal_mask(
    checkpoints: dict[str, Path], family: str, kind: str
) -> None:
    loaded = load_checkpoint(checkpoints[family])
    reference = _reference_config(kind, loaded.args).eval()
    missing, unexpected = reference.load_state_dict(_in_transformers_names(loaded), strict=False)
    assert not unexpected
    assert set(missing) <= ({"lm_head.weight"} if loaded.args.tie_embeddings else set())

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(0, loaded.args.vocab_size, (2, 11), generator=generator)
    positions = torch.arange(11).expand(2, 11)
    causal = torch.ones(11, 11, dtype=torch.bool).tril()[None, None]
    with torch.no_grad():
        ours = loaded.model(ids, positions, causal)
        theirs = reference(ids).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_the_default_model_layout_loads_as_llama(tiny_model: Path) -> None:
    """`write_tiny_llama` writes what the default model's GGUF conversion writes."""
    loaded = load_checkpoint(tiny_model)
    assert loaded.family.name == "llama" and loaded.facts.attention == "causal"
    assert (loaded.facts.mask_token, loaded.facts.block_size) == (None, 1)
    assert loaded.args.tie_embeddings and loaded.model.lm_head.weight is loaded.model.embed.weight
    assert loaded.tokenizer.eos_token_id in loaded.facts.eos_ids

    reference = LlamaForCausalLM.from_pretrained(tiny_model).eval()
    ids = torch.tensor([[1, 5, 9, 33, 2]])
    causal = torch.ones(5, 5, dtype=torch.bool).tril()[None, None]
    with torch.no_grad():
        ours = loaded.model(ids, torch.arange(5)[None], causal)
        torch.testing.assert_close(ours, reference(ids).logits, atol=1e-4, rtol=1e-4)


# Names from LLaDA-8B-Instruct's and SDAR-4B-Chat's model.safetensors.index.json; LLaDA's
# roles from its modeling file: `act(ff_proj(x)) * up_proj(x)`, then ff_out.
LLADA_REAL_NAMES = {
    "embed.weight": "model.transformer.wte.weight",
    "norm.weight": "model.transformer.ln_f.weight",
    "lm_head.weight": "model.transformer.ff_out.weight",
    "layers.0.attn_norm.weight": "model.transformer.blocks.0.attn_norm.weight",
    "layers.0.attn.q.weight": "model.transformer.blocks.0.q_proj.weight",
    "layers.0.attn.k.weight": "model.transformer.blocks.0.k_proj.weight",
    "layers.0.attn.v.weight": "model.transformer.blocks.0.v_proj.weight",
    "layers.0.attn.o.weight": "model.transformer.blocks.0.attn_out.weight",
    "layers.0.mlp_norm.weight": "model.transformer.blocks.0.ff_norm.weight",
    "layers.0.mlp.gate.weight": "model.transformer.blocks.0.ff_proj.weight",
    "layers.0.mlp.up.weight": "model.transformer.blocks.0.up_proj.weight",
    "layers.0.mlp.down.weight": "model.transformer.blocks.0.ff_out.weight",
}
SDAR_REAL_NAMES = {
    "embed.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "lm_head.weight": "lm_head.weight",
    "layers.0.attn_norm.weight": "model.layers.0.input_layernorm.weight",
    "layers.0.attn.q.weight": "model.layers.0.self_attn.q_proj.weight",
    "layers.0.attn.k.weight": "model.layers.0.self_attn.k_proj.weight",
    "layers.0.attn.v.weight": "model.layers.0.self_attn.v_proj.weight",
    "layers.0.attn.o.weight": "model.layers.0.self_attn.o_proj.weight",
    "layers.0.attn.q_norm.weight": "model.layers.0.self_attn.q_norm.weight",
    "layers.0.attn.k_norm.weight": "model.layers.0.self_attn.k_norm.weight",
    "layers.0.mlp_norm.weight": "model.layers.0.post_attention_layernorm.weight",
    "layers.0.mlp.gate.weight": "model.layers.0.mlp.gate_proj.weight",
    "layers.0.mlp.up.weight": "model.layers.0.mlp.up_proj.weight",
    "layers.0.mlp.down.weight": "model.layers.0.mlp.down_proj.weight",
}


@pytest.mark.parametrize(
    ("family", "args", "real_names"),
    [
        (
            "llada",
            llada_model_args({"d_model": 64, "n_layers": 1, "n_heads": 4, "vocab_size": 9}),
            LLADA_REAL_NAMES,
        ),
        ("sdar", ModelArgs(9, 64, 1, 4, 2, 128, qk_norm=True), SDAR_REAL_NAMES),
    ],
)
def test_name_maps_give_the_real_checkpoints_names(
    family: str, args: ModelArgs, real_names: dict[str, str]
) -> None:
    with torch.device("meta"):
        model = Transformer(args)
    names = {name: FAMILIES[family].checkpoint_name(name) for name, _ in model.named_parameters()}
    assert names == real_names


def test_config_readers_accept_v4_and_v5_rope_fields() -> None:
    base = {
        "vocab_size": 10,
        "hidden_size": 64,
        "num_hidden_layers": 1,
        "num_attention_heads": 4,
        "intermediate_size": 128,
    }
    scaling = {
        "rope_type": "llama3",
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    }
    v4 = hf_model_args({**base, "rope_theta": 500000.0, "rope_scaling": scaling})
    v5 = hf_model_args({**base, "rope_parameters": {**scaling, "rope_theta": 500000.0}})
    assert v4 == v5
    assert (v5.rope_theta, v5.rope_scaling, v5.num_kv_heads) == (500000.0, scaling, 4)
    plain = hf_model_args({**base, "rope_parameters": {"rope_type": "default", "rope_theta": 1e6}})
    assert (plain.rope_theta, plain.rope_scaling) == (1e6, None)


def test_config_overrides_the_family_block_size(copy_of) -> None:
    folder = copy_of("fast_dllm_v2")
    _edit_config(folder, bd_size=16)
    facts = load_checkpoint(folder).facts
    assert facts.block_size == 16 and facts.policy.block_size == 16


# Loader errors: each names the tensor or field, and leaves the folder as it was.


def _edit_config(folder: Path, **changes) -> None:
    path = folder / "config.json"
    config = {**json.loads(path.read_text()), **changes}
    path.write_text(json.dumps({k: v for k, v in config.items() if v is not None}))


def _rewrite_weights(folder: Path, change) -> None:
    path = folder / "model.safetensors"
    tensors = _checkpoint_tensors(folder)
    change(tensors)
    save_file(tensors, path, metadata={"format": "pt"})


def _load_fails(folder: Path, *, family: str | None = None) -> str:
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    with pytest.raises(ModelUnavailableError) as caught:
        load_checkpoint(folder, family=family)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    return str(caught.value)


def test_a_missing_tensor_is_named(copy_of) -> None:
    folder = copy_of("dream")
    _rewrite_weights(folder, lambda t: t.pop("model.layers.1.mlp.up_proj.weight"))
    message = _load_fails(folder)
    assert "missing tensor 'model.layers.1.mlp.up_proj.weight'" in message


def test_a_wrong_shape_names_the_tensor_and_both_shapes(copy_of) -> None:
    folder = copy_of("llada")
    name = "model.transformer.blocks.0.ff_proj.weight"
    _rewrite_weights(folder, lambda t: t.update({name: torch.zeros(100, 64)}))
    message = _load_fails(folder)
    assert name in message and "[100, 64]" in message and "[192, 64]" in message


def test_an_unexpected_tensor_is_named_but_saved_rope_buffers_are_ignored(copy_of) -> None:
    folder = copy_of("sdar")
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    extras = {
        "model.layers.0.self_attn.o_proj.bias": torch.zeros(64),  # attention_bias unsupported
        "model.layers.0.self_attn.rotary_emb.inv_freq": torch.zeros(16),
    }
    save_file(extras, folder / "extra.safetensors")
    index["weight_map"].update(dict.fromkeys(extras, "extra.safetensors"))
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    message = _load_fails(folder)
    assert "'model.layers.0.self_attn.o_proj.bias'" in message
    assert "inv_freq" not in message


def test_an_unknown_family_names_what_it_saw_and_the_known_ones(copy_of) -> None:
    folder = copy_of("dream")
    _edit_config(folder, model_type="mamba", architectures=["MambaForCausalLM"])
    message = _load_fails(folder)
    assert "'mamba'" in message and "MambaForCausalLM" in message
    assert all(name in message for name in FAMILIES)
    assert "'gpt2'" in _load_fails(copy_of("sdar"), family="gpt2")


def test_a_mask_id_outside_the_vocabulary_names_mask_token_id(copy_of) -> None:
    folder = copy_of("dream")
    _edit_config(folder, mask_token_id=None)  # the family's real id, 151666, is not in it
    message = _load_fails(folder)
    assert "mask_token_id 151666" in message and "vocab_size 400" in message


def test_a_missing_config_field_is_named(copy_of) -> None:
    folder = copy_of("llada")
    _edit_config(folder, d_model=None)
    assert "'d_model'" in _load_fails(folder)


def test_an_unsupported_llada_variant_is_refused_by_field(copy_of) -> None:
    folder = copy_of("llada")
    _edit_config(folder, attention_layer_norm=True)
    assert "attention_layer_norm=True" in _load_fails(folder)


def test_a_tokenizer_without_a_chat_template_is_refused(copy_of) -> None:
    folder = copy_of("sdar")
    (folder / "chat_template.jinja").unlink()
    assert "chat template" in _load_fails(folder)
