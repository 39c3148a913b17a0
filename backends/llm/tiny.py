"""Tiny random-initialised checkpoints in the real Hugging Face layout.

Tests and benchmarks load these through the same loader as real models, so the path from a
folder on disk to generated text is exercised without downloading anything. Their output is
noise; what they check is structure, bookkeeping and speed ratios.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{{ message['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TRAINING_TEXT = (
    "Research reports cite their sources. A plan lists sections and key questions. "
    "The draft is revised with evidence from search results [1] and documents [2]. "
    "Diffusion language models denoise masked tokens in parallel, block by block. "
    "Retrieval finds passages; the answer summarises them with numbered citations. "
)


def write_tiny_tokenizer(folder: Path, vocab_size: int = 400):
    """A byte-level BPE tokenizer with a ChatML template, trained on a few sentences."""
    return _write_tokenizer(folder, CHATML_TOKENS, vocab_size)


@dataclass(frozen=True)
class TinyTokens:
    """A family's special tokens, spelled as in its real tokenizer, and its chat template."""

    special: tuple[str, ...]
    bos: str
    eos: str
    pad: str
    chat_template: str
    mask: str | None = None


CHATML_TOKENS = TinyTokens(
    special=tuple(SPECIAL_TOKENS),
    bos="<|im_start|>",
    eos="<|im_end|>",
    pad="<|endoftext|>",
    chat_template=CHAT_TEMPLATE,
)
# LLaDA-8B-Instruct's tokenizer_config.json: <|mdm_mask|> 126336, <|endoftext|> 126081 (EOS),
# <|eot_id|> 126348, and its LLaMA-3-style template.
LLADA_CHAT_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'"
    "+ message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}"
    "{{ content }}{% endfor %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
)
FAMILY_TOKENS = {
    "llada": TinyTokens(
        special=(
            "<|startoftext|>",
            "<|endoftext|>",
            "<|mdm_mask|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
        ),
        bos="<|startoftext|>",
        eos="<|endoftext|>",
        pad="<|endoftext|>",
        chat_template=LLADA_CHAT_TEMPLATE,
        mask="<|mdm_mask|>",
    ),
    # Qwen2.5 / Qwen3 ChatML vocabularies, each with the family's own mask token.
    "dream": TinyTokens(
        (*SPECIAL_TOKENS, "<|mask|>"),
        bos="<|endoftext|>",
        eos="<|endoftext|>",
        pad="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        mask="<|mask|>",
    ),
    "fast_dllm_v2": TinyTokens(
        (*SPECIAL_TOKENS, "|<MASK>|"),
        bos="<|endoftext|>",
        eos="<|im_end|>",
        pad="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        mask="|<MASK>|",
    ),
    "sdar": TinyTokens(
        (*SPECIAL_TOKENS, "<MASK>"),
        bos="<|endoftext|>",
        eos="<|endoftext|>",
        pad="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
        mask="<MASK>",
    ),
}


def _write_tokenizer(folder: Path, tokens: TinyTokens, vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(tokens.special),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator([TRAINING_TEXT] * 4, trainer=trainer)
    mask = {"mask_token": tokens.mask} if tokens.mask else {}
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=tokens.bos,
        eos_token=tokens.eos,
        pad_token=tokens.pad,
        unk_token=tokens.pad,
        **mask,
    )
    tokenizer.chat_template = tokens.chat_template
    tokenizer.save_pretrained(folder)
    return tokenizer


def write_tiny_llama(
    folder: Path,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    layers: int = 2,
    context_length: int = 4096,
) -> Path:
    """A LLaMA-shaped checkpoint (the default model's family) with random weights."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer = write_tiny_tokenizer(folder)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=context_length,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


TINY_FAMILIES = ("llada", "dream", "fast_dllm_v2", "sdar", "llama")


def write_tiny_checkpoint(
    folder: Path,
    family: str,
    *,
    seed: int = 0,
    hidden_size: int = 64,
    layers: int = 2,
    context_length: int = 4096,
    shards: int = 1,
) -> Path:
    """A random checkpoint of `family` in its real layout: config.json field names, model_type
    and architectures, tensor names, safetensors (sharded with an index when `shards` > 1) and
    tokenizer files with the family's special tokens.

    The real mask ids (126336, 151666…) lie far outside a tiny vocabulary, so config.json's
    `mask_token_id` is this tokenizer's id for the family's mask token, as a real config may
    also carry it.
    """
    if family == "llama":
        return write_tiny_llama(
            folder, seed=seed, hidden_size=hidden_size, layers=layers, context_length=context_length
        )
    if family not in FAMILY_TOKENS:
        raise ValueError(f"no tiny writer for family {family!r}; known: {', '.join(TINY_FAMILIES)}")
    from backends.llm.families import FAMILIES

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokens = FAMILY_TOKENS[family]
    tokenizer = _write_tokenizer(folder, tokens, vocab_size=400)
    ids = {
        "bos_token_id": tokenizer.convert_tokens_to_ids(tokens.bos),
        "eos_token_id": tokenizer.convert_tokens_to_ids(tokens.eos),
        "pad_token_id": tokenizer.convert_tokens_to_ids(tokens.pad),
        "mask_token_id": tokenizer.convert_tokens_to_ids(tokens.mask),
    }
    config = _CONFIG_WRITERS[family](len(tokenizer), hidden_size, layers, context_length)
    config.update(ids)
    (folder / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    args = FAMILIES[family].model_args(config)
    _write_weights(folder, FAMILIES[family], args, seed, shards)
    return folder


def _write_weights(folder: Path, family, args, seed: int, shards: int) -> None:
    """Random weights under the family's tensor names (norm gains too, so a swapped norm shows)."""
    import torch
    from safetensors.torch import save_file

    from backends.llm.transformer import Transformer

    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = Transformer(args)
        for name, parameter in model.named_parameters():
            if name.endswith("norm.weight"):
                parameter.data = 1 + 0.2 * torch.randn_like(parameter)
    tensors = {
        family.checkpoint_name(name): parameter.detach().contiguous()
        for name, parameter in model.named_parameters()
    }
    names = sorted(tensors)
    if shards == 1:
        save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
        return
    weight_map = {}
    for shard in range(shards):
        file = f"model-{shard + 1:05d}-of-{shards:05d}.safetensors"
        part = {name: tensors[name] for name in names[shard::shards]}
        save_file(part, folder / file, metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, file))
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    index = {"metadata": {"total_size": size}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")


def _llada_config(vocab: int, hidden: int, layers: int, context: int) -> dict:
    """Field names of LLaDA-8B-Instruct's config.json (OLMo style)."""
    return {
        "architectures": ["LLaDAModelLM"],
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
            "AutoModel": "modeling_llada.LLaDAModelLM",
        },
        "model_type": "llada",
        "activation_type": "silu",
        "alibi": False,
        "attention_layer_norm": False,
        "block_type": "llama",
        "d_model": hidden,
        "embedding_size": vocab,
        "include_bias": False,
        "include_qkv_bias": False,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "max_sequence_length": context,
        "mlp_hidden_size": hidden * 3,
        "mlp_ratio": 4,
        "n_heads": 4,
        "n_kv_heads": 4,
        "n_layers": layers,
        "rms_norm_eps": 1e-05,
        "rope": True,
        "rope_theta": 500000.0,
        "scale_logits": False,
        "use_cache": False,
        "vocab_size": vocab,
        "weight_tying": False,
    }


def _qwen_config(vocab: int, hidden: int, layers: int, context: int) -> dict:
    """The transformers Qwen2 fields that Dream, Fast-dLLM v2 and SDAR configs carry."""
    return {
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "hidden_size": hidden,
        "intermediate_size": hidden * 3,
        "max_position_embeddings": context,
        "max_window_layers": layers,
        "num_attention_heads": 4,
        "num_hidden_layers": layers,
        "num_key_value_heads": 2,
        "rms_norm_eps": 1e-06,
        "rope_scaling": None,
        "rope_theta": 1000000.0,
        "sliding_window": None,
        "tie_word_embeddings": False,
        "use_cache": False,
        "use_sliding_window": False,
        "vocab_size": vocab,
    }


def _dream_config(vocab: int, hidden: int, layers: int, context: int) -> dict:
    return {
        "architectures": ["DreamModel"],
        "auto_map": {
            "AutoConfig": "configuration_dream.DreamConfig",
            "AutoModel": "modeling_dream.DreamModel",
        },
        "model_type": "Dream",
        **_qwen_config(vocab, hidden, layers, context),
    }


def _fast_dllm_v2_config(vocab: int, hidden: int, layers: int, context: int) -> dict:
    """Fast_dLLM_v2_1.5B's shape: Qwen2.5 with tied embeddings and a `bd_size`."""
    return {
        "architectures": ["Fast_dLLM_QwenForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration.Fast_dLLM_QwenConfig",
            "AutoModel": "modeling.Fast_dLLM_QwenModel",
            "AutoModelForCausalLM": "modeling.Fast_dLLM_QwenForCausalLM",
        },
        "model_type": "Fast_dLLM_Qwen",
        **_qwen_config(vocab, hidden, layers, context),
        "bd_size": 32,
        "tie_word_embeddings": True,
    }


def _sdar_config(vocab: int, hidden: int, layers: int, context: int) -> dict:
    """SDAR-4B-Chat's fields; its head_dim (128) differs from hidden/heads (80), as here."""
    return {
        "architectures": ["SDARForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_sdar.SDARConfig",
            "AutoModel": "modeling_sdar.SDARModel",
            "AutoModelForCausalLM": "modeling_sdar.SDARForCausalLM",
        },
        "model_type": "sdar",
        **_qwen_config(vocab, hidden, layers, context),
        "attention_bias": False,
        "block_size": 4,
        "head_dim": 2 * hidden // 4,
    }


_CONFIG_WRITERS = {
    "llada": _llada_config,
    "dream": _dream_config,
    "fast_dllm_v2": _fast_dllm_v2_config,
    "sdar": _sdar_config,
}
