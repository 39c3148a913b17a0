"""Autoregressive generation over any local Hugging Face causal-LM checkpoint folder.

This is the baseline the diffusion engine is measured against and, until the block-diffusion
adapter lands, the default path: one token per forward pass, with a KV cache. The decode
loop is written out (prefill, then one token per step) rather than delegated to
`model.generate`, so forward passes are counted exactly and the loop can be swapped for
block-parallel decoding behind the same `Generator` contract.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache
from transformers.utils import logging as hf_logging

from backends.llm.protocol import ChatMessage, Generation, GenerationStats, ModelInfo
from ttdr.errors import ModelUnavailableError

hf_logging.disable_progress_bar()

LOOP_NGRAM = 12  # tokens; a second occurrence of such a run means the model is looping
hf_logging.set_verbosity_error()


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(requested)


class CausalLMGenerator:
    """Greedy or sampled decoding with a KV cache; reports tokens and forward passes."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        info: ModelInfo,
        *,
        repetition_penalty: float = 1.0,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self._info = info
        self.repetition_penalty = repetition_penalty
        self.eos_ids = _eos_ids(tokenizer, model.config)

    @classmethod
    def from_folder(
        cls,
        path: Path,
        *,
        name: str | None = None,
        device: str = "auto",
        repetition_penalty: float = 1.0,
    ) -> CausalLMGenerator:
        path = Path(path)
        if not (path / "config.json").is_file():
            raise ModelUnavailableError(
                f"{path} is not a checkpoint folder: config.json is missing. Pass a folder with "
                "config.json, safetensors weights and tokenizer files, or a name from "
                "`ttdr models`."
            )
        dev = pick_device(device)
        dtype = torch.bfloat16 if dev.type == "cuda" else torch.float32
        try:
            tokenizer = AutoTokenizer.from_pretrained(path)
            model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(dev)
        except (OSError, ValueError, KeyError) as exc:
            raise ModelUnavailableError(f"could not load the model in {path}: {exc}") from exc
        if tokenizer.chat_template is None:
            raise ModelUnavailableError(
                f"{path} has no chat template in its tokenizer files; ttdr needs an instruct model."
            )
        config = model.config
        info = ModelInfo(
            name=name or path.name,
            family=getattr(config, "model_type", "unknown"),
            decoding="autoregressive (one token per forward, KV cache)",
            device=str(dev),
            path=str(path),
            context_length=int(getattr(config, "max_position_embeddings", 2048)),
        )
        return cls(model, tokenizer, info, repetition_penalty=repetition_penalty)

    @property
    def info(self) -> ModelInfo:
        return self._info

    def encode_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=False
        )
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def generate(
        self,
        messages: Sequence[ChatMessage],
        max_new_tokens: int,
        *,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Generation:
        prompt = self.encode_chat(messages)
        # Keep the prompt's end (the instruction) when it would overflow the context.
        budget = max(self._info.context_length - max_new_tokens, 16)
        prompt = prompt[-budget:]
        start = time.perf_counter()
        new_tokens, forwards, finish = self.decode(prompt, max_new_tokens, temperature, seed)
        stats = GenerationStats(
            tokens=len(new_tokens),
            prompt_tokens=len(prompt),
            forward_passes=forwards,
            seconds=time.perf_counter() - start,
            calls=1,
        )
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        return Generation(text=text.strip(), stats=stats, finish_reason=finish)

    @torch.inference_mode()
    def decode(
        self, prompt: list[int], max_new_tokens: int, temperature: float, seed: int | None
    ) -> tuple[list[int], int, str]:
        """Prefill once, then one forward per token; returns tokens, forwards, finish reason.

        Small models fall into loops under greedy decoding; a repeated n-gram ends the
        generation (the repeat is cut) instead of filling the budget with it.
        """
        device = next(self.model.parameters()).device
        rng = None
        if temperature > 0:
            rng = torch.Generator(device=device)
            rng.manual_seed(seed or 0)
        cache = DynamicCache(config=self.model.config)
        inputs = torch.tensor([prompt], device=device)
        out: list[int] = []
        seen_ngrams: set[tuple[int, ...]] = set()
        forwards = 0
        while len(out) < max_new_tokens:
            # logits_to_keep=1: the prompt's other positions never need the vocabulary projection.
            logits = self.model(
                input_ids=inputs, cache=cache, use_cache=True, logits_to_keep=1
            ).logits
            forwards += 1
            scores = penalise_repeats(logits[0, -1].float(), out, self.repetition_penalty)
            token = _pick_token(scores, temperature, rng)
            if token in self.eos_ids:
                return out, forwards, "eos"
            out.append(token)
            if len(out) >= LOOP_NGRAM:
                tail = tuple(out[-LOOP_NGRAM:])
                if tail in seen_ngrams:
                    return out[:-LOOP_NGRAM], forwards, "repetition"
                seen_ngrams.add(tuple(out[-LOOP_NGRAM - 1 : -1]))
            inputs = torch.tensor([[token]], device=device)
        return out, forwards, "length"


def penalise_repeats(logits: torch.Tensor, generated: list[int], penalty: float) -> torch.Tensor:
    """CTRL-style repetition penalty (Keskar et al. 2019), over generated tokens only: the
    prompt holds the sources, and copying their words is what an answer should do."""
    if penalty == 1.0 or not generated:
        return logits
    ids = torch.tensor(sorted(set(generated)), device=logits.device)
    picked = logits[ids]
    logits = logits.clone()
    logits[ids] = torch.where(picked > 0, picked / penalty, picked * penalty)
    return logits


def _pick_token(logits: torch.Tensor, temperature: float, rng: torch.Generator | None) -> int:
    if temperature <= 0:
        return int(torch.argmax(logits))
    probs = torch.softmax(logits / temperature, dim=-1)
    return int(torch.multinomial(probs, 1, generator=rng))


def _eos_ids(tokenizer, config) -> set[int]:
    """Chat models end a turn with a template token that is not always `eos_token_id`."""
    ids: set[int] = set()
    for value in (tokenizer.eos_token_id, getattr(config, "eos_token_id", None)):
        if isinstance(value, int):
            ids.add(value)
        elif isinstance(value, list):
            ids.update(value)
    vocab = tokenizer.get_vocab()
    for marker in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>"):
        if marker in vocab:
            ids.add(vocab[marker])
    return ids
