"""The model families the engine loads natively, each a few lines of data.

A family says how to recognise a checkpoint (config.json `model_type` / `architectures`), how to
read its config.json into `ModelArgs`, how its tensors are named (a map from our parameter names
to the checkpoint's, nano-vllm style), and its decode defaults as `ModelFacts` (attention, block
and sub-block size, mask id, EOS ids and whether they rank last, logit shift, threshold), which
the loader resolves against each checkpoint. Sources are `research/dllm_engines.md` §0–§4
unless a comment names another.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from backends.llm.facts import ModelFacts
from backends.llm.transformer import ModelArgs
from ttdr.errors import ModelUnavailableError

_REQUIRED = object()
_LAYER = re.compile(r"^layers\.(\d+)\.")


@dataclass(frozen=True, eq=False)
class Family:
    name: str
    model_types: tuple[str, ...]
    architectures: tuple[str, ...]
    model_args: Callable[[dict[str, Any]], ModelArgs]
    # Our parameter name -> the checkpoint's; "{i}" stands for the layer index.
    param_names: dict[str, str]
    # The family's decode defaults; config.json's `mask_token_id` and `block_size_field`
    # override the mask id and block size, the tokenizer's `eos_tokens` the EOS ids.
    facts: ModelFacts
    # The EOS tokens as strings: looked up in the checkpoint's own tokenizer, so a tiny
    # checkpoint with a small vocabulary gets its own ids for them.
    eos_tokens: tuple[str, ...]
    block_size_field: str | None = None  # a config.json field that overrides the block size

    def checkpoint_name(self, ours: str) -> str:
        """The checkpoint's name for our parameter `ours`, e.g. `layers.3.attn.q.weight`."""
        match = _LAYER.match(ours)
        if match is None:
            return self.param_names[ours]
        template = "layers.{i}." + ours[match.end() :]
        return self.param_names[template].format(i=match.group(1))


def config_field(config: dict[str, Any], name: str, default: Any = _REQUIRED) -> Any:
    """A config.json field; a missing required one is an error that names it."""
    value = config.get(name)
    if value is not None:
        return value
    if default is _REQUIRED:
        raise ModelUnavailableError(f"config.json has no {name!r} field, which this family needs.")
    return default


def _rope(config: dict[str, Any]) -> tuple[float, dict | None]:
    """RoPE theta and scaling from v4 (`rope_theta`, `rope_scaling`) or v5 (`rope_parameters`)."""
    parameters = config.get("rope_parameters") or {}
    theta = float(parameters.get("rope_theta", config.get("rope_theta", 10000.0)))
    scaling = config.get("rope_scaling")
    if scaling is None and parameters.get("rope_type", "default") != "default":
        scaling = {k: v for k, v in parameters.items() if k != "rope_theta"}
    return theta, scaling


def hf_model_args(
    config: dict[str, Any], *, qk_norm: bool = False, qkv_bias: bool | None = None
) -> ModelArgs:
    """LLaMA / Qwen2 / Qwen3 configs (transformers field names)."""
    get = partial(config_field, config)
    heads = get("num_attention_heads")
    theta, scaling = _rope(config)
    return ModelArgs(
        vocab_size=get("vocab_size"),
        hidden_size=get("hidden_size"),
        num_layers=get("num_hidden_layers"),
        num_heads=heads,
        num_kv_heads=get("num_key_value_heads", heads),
        intermediate_size=get("intermediate_size"),
        head_dim=get("head_dim", 0),
        rms_norm_eps=get("rms_norm_eps", 1e-6),
        rope_theta=theta,
        rope_scaling=scaling,
        qk_norm=qk_norm,
        attention_bias=get("attention_bias", False) if qkv_bias is None else qkv_bias,
        tie_embeddings=get("tie_word_embeddings", False),
        max_position_embeddings=get("max_position_embeddings", 4096),
    )


# What our LLaDA path implements; a config asking for something else is refused by name.
# Field names from a public copy of LLaDA-8B-Instruct's config.json (yinj66/support_basis,
# LLaDA-8B-Instruct-B&S-light/config.json).
_LLADA_SUPPORTED = {
    "block_type": "llama",
    "layer_norm_type": "rms",
    "activation_type": "silu",
    "attention_layer_norm": False,
    "alibi": False,
    "rope": True,
    "include_bias": False,
    "input_emb_norm": False,
    "scale_logits": False,
}


def llada_model_args(config: dict[str, Any]) -> ModelArgs:
    """LLaDA's OLMo-style config: d_model, n_layers, n_heads, mlp_hidden_size, weight_tying…"""
    for name, supported in _LLADA_SUPPORTED.items():
        if name in config and config[name] != supported:
            raise ModelUnavailableError(
                f"LLaDA config field {name}={config[name]!r} is not supported "
                f"(the engine implements {name}={supported!r})."
            )
    get = partial(config_field, config)
    width, heads = get("d_model"), get("n_heads")
    return ModelArgs(
        vocab_size=get("embedding_size", None) or get("vocab_size"),
        hidden_size=width,
        num_layers=get("n_layers"),
        num_heads=heads,
        num_kv_heads=get("n_kv_heads", heads),
        intermediate_size=get("mlp_hidden_size", None) or get("mlp_ratio", 4) * width,
        rms_norm_eps=get("rms_norm_eps", 1e-5),
        rope_theta=float(get("rope_theta", 10000.0)),
        attention_bias=bool(get("include_qkv_bias", False)),
        tie_embeddings=get("weight_tying", False),
        max_position_embeddings=get("max_sequence_length", 4096),
    )


# transformers' LLaMA / Qwen2 / Qwen3 names, which Dream, Fast-dLLM v2 and SDAR keep (checked
# against SDAR-4B-Chat's model.safetensors.index.json in JetAstra/SDAR, and the DreamModel /
# Fast_dLLM_QwenForCausalLM modeling files: `self.model` + `lm_head`, q/k/v biases).
HF_NAMES = {
    "embed.weight": "model.embed_tokens.weight",
    "norm.weight": "model.norm.weight",
    "lm_head.weight": "lm_head.weight",
    "layers.{i}.attn_norm.weight": "model.layers.{i}.input_layernorm.weight",
    "layers.{i}.mlp_norm.weight": "model.layers.{i}.post_attention_layernorm.weight",
    "layers.{i}.attn.q.weight": "model.layers.{i}.self_attn.q_proj.weight",
    "layers.{i}.attn.k.weight": "model.layers.{i}.self_attn.k_proj.weight",
    "layers.{i}.attn.v.weight": "model.layers.{i}.self_attn.v_proj.weight",
    "layers.{i}.attn.o.weight": "model.layers.{i}.self_attn.o_proj.weight",
    "layers.{i}.attn.q.bias": "model.layers.{i}.self_attn.q_proj.bias",
    "layers.{i}.attn.k.bias": "model.layers.{i}.self_attn.k_proj.bias",
    "layers.{i}.attn.v.bias": "model.layers.{i}.self_attn.v_proj.bias",
    "layers.{i}.attn.q_norm.weight": "model.layers.{i}.self_attn.q_norm.weight",
    "layers.{i}.attn.k_norm.weight": "model.layers.{i}.self_attn.k_norm.weight",
    "layers.{i}.mlp.gate.weight": "model.layers.{i}.mlp.gate_proj.weight",
    "layers.{i}.mlp.up.weight": "model.layers.{i}.mlp.up_proj.weight",
    "layers.{i}.mlp.down.weight": "model.layers.{i}.mlp.down_proj.weight",
}

# LLaDA's OLMo names, from LLaDA-8B-Instruct's model.safetensors.index.json (public copy in
# yinj66/support_basis) and NVIDIA Megatron-Bridge's LLaDA bridge, which reads
# `act(ff_proj(x)) * up_proj(x)` in modeling_llada.py: ff_proj is the gate, up_proj the up.
LLADA_NAMES = {
    "embed.weight": "model.transformer.wte.weight",
    "norm.weight": "model.transformer.ln_f.weight",
    "lm_head.weight": "model.transformer.ff_out.weight",
    "layers.{i}.attn_norm.weight": "model.transformer.blocks.{i}.attn_norm.weight",
    "layers.{i}.mlp_norm.weight": "model.transformer.blocks.{i}.ff_norm.weight",
    "layers.{i}.attn.q.weight": "model.transformer.blocks.{i}.q_proj.weight",
    "layers.{i}.attn.k.weight": "model.transformer.blocks.{i}.k_proj.weight",
    "layers.{i}.attn.v.weight": "model.transformer.blocks.{i}.v_proj.weight",
    "layers.{i}.attn.o.weight": "model.transformer.blocks.{i}.attn_out.weight",
    "layers.{i}.attn.q.bias": "model.transformer.blocks.{i}.q_proj.bias",
    "layers.{i}.attn.k.bias": "model.transformer.blocks.{i}.k_proj.bias",
    "layers.{i}.attn.v.bias": "model.transformer.blocks.{i}.v_proj.bias",
    "layers.{i}.mlp.gate.weight": "model.transformer.blocks.{i}.ff_proj.weight",
    "layers.{i}.mlp.up.weight": "model.transformer.blocks.{i}.up_proj.weight",
    "layers.{i}.mlp.down.weight": "model.transformer.blocks.{i}.ff_out.weight",
}

FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family(
            # EOS 126081 <|endoftext|>, EoT 126348 <|eot_id|> (ids checked in LLaDA-8B-Instruct's
            # tokenizer_config.json); semi-AR block 32 as in LLaDA's chat.py.
            name="llada",
            model_types=("llada",),
            architectures=("LLaDAModelLM",),
            model_args=llada_model_args,
            param_names=LLADA_NAMES,
            facts=ModelFacts(
                attention="bidirectional",
                block_size=32,
                logit_shift=False,
                mask_token=126336,
                eos_ids=(126081, 126348),
                eos_last=True,
            ),
            eos_tokens=("<|endoftext|>", "<|eot_id|>"),
        ),
        Family(
            # Qwen2 shape with q/k/v biases hard-coded in DreamAttention (bias=True), so the
            # config carries no attention_bias. EOS: generation_config eos 151643
            # <|endoftext|>; turn end 151645 <|im_end|> (Qwen2.5 ChatML).
            name="dream",
            model_types=("Dream",),
            architectures=("DreamModel",),
            model_args=lambda config: hf_model_args(config, qkv_bias=True),
            param_names=HF_NAMES,
            facts=ModelFacts(
                attention="bidirectional",
                block_size=32,
                logit_shift=True,
                mask_token=151666,
                eos_ids=(151643, 151645),
            ),
            eos_tokens=("<|endoftext|>", "<|im_end|>"),
        ),
        Family(
            # model_type / architectures / `bd_size` as in Fast-dLLM v2's config (SGLang's
            # dllm config reads `bd_size` for Fast_dLLM_QwenForCausalLM); q/k/v bias=True in
            # its modeling file.
            name="fast_dllm_v2",
            model_types=("Fast_dLLM_Qwen",),
            architectures=("Fast_dLLM_QwenForCausalLM",),
            model_args=lambda config: hf_model_args(config, qkv_bias=True),
            param_names=HF_NAMES,
            facts=ModelFacts(
                attention="block_causal",
                block_size=32,
                sub_block_size=8,
                logit_shift=True,
                mask_token=151665,
                eos_ids=(151645,),
            ),
            eos_tokens=("<|im_end|>",),
            block_size_field="bd_size",
        ),
        Family(
            # Qwen3 shape (per-head q/k RMSNorm); SDAR-4B-Chat config.json and
            # generation_config.json (eos [151645, 151643]) in JetAstra/SDAR.
            name="sdar",
            model_types=("sdar",),
            architectures=("SDARForCausalLM",),
            model_args=lambda config: hf_model_args(config, qk_norm=True),
            param_names=HF_NAMES,
            facts=ModelFacts(
                attention="block_causal",
                block_size=4,
                logit_shift=False,
                mask_token=151669,
                eos_ids=(151645, 151643),
            ),
            eos_tokens=("<|im_end|>", "<|endoftext|>"),
            block_size_field="block_size",
        ),
        Family(
            # The default model (SmolLM2, converted from GGUF): plain autoregressive until the
            # block-diffusion adapter exists, so no mask token and block size 1; its end ids
            # come from its tokenizer.
            name="llama",
            model_types=("llama",),
            architectures=("LlamaForCausalLM",),
            model_args=hf_model_args,
            param_names=HF_NAMES,
            facts=ModelFacts(
                attention="causal",
                block_size=1,
                # An autoregressive model predicts token i from position i-1: decoding it
                # through the engine (block size 1) is the shifted case, like Dream.
                logit_shift=True,
                mask_token=None,
                eos_ids=(),
                threshold=1.0,
            ),
            eos_tokens=("<|im_end|>", "<|endoftext|>"),
        ),
    )
}


def detect_family(config: dict[str, Any]) -> Family:
    """The family of a checkpoint, by its architectures first, then its model_type."""
    architectures = set(config.get("architectures") or ())
    model_type = str(config.get("model_type") or "").lower()
    for family in FAMILIES.values():
        if architectures & set(family.architectures):
            return family
    for family in FAMILIES.values():
        if model_type in (t.lower() for t in family.model_types):
            return family
    raise ModelUnavailableError(
        f"unknown model family: config.json has model_type={config.get('model_type')!r} and "
        f"architectures={sorted(architectures)}; known families: {', '.join(FAMILIES)}."
    )


def family_named(name: str) -> Family:
    if name not in FAMILIES:
        raise ModelUnavailableError(
            f"unknown model family {name!r}; known families: {', '.join(FAMILIES)}."
        )
    return FAMILIES[name]
