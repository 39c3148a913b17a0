"""The dLLM engine: `generate`, `stream`, `infill`, `rewrite` and `score` over one model.

It turns text into canvases for the denoising loop (`denoise.py`) and back, and it is both the
`Generator` and the `Editor` the agent uses. Bidirectional models (LLaDA, Dream) edit a
document in place: the span is masked where it stands and filled with context on both sides.
Causal and block-causal models (SDAR, Fast-dLLM v2, the default model) cannot see text to
their right, so for them the text after the span moves into the prompt and the span is
generated.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from typing import Literal

import torch

from backends.llm.decoding import DecodePolicy
from backends.llm.denoise import Canvas, Denoiser, DenoiseStats
from backends.llm.facts import CacheMode, ModelFacts
from backends.llm.loader import LoadedModel
from backends.llm.protocol import (
    ChatMessage,
    Edit,
    Generation,
    GenerationStats,
    ModelInfo,
    Score,
    Span,
)
from backends.llm.repetition import cut_at_loop
from backends.llm.transformer import Transformer

FILL_PROMPT = (
    "Here is a document with a gap marked {marker}.\n\n{before}{marker}{after}\n\n"
    "Write only the text that belongs in the gap."
)
REWRITE_PROMPT = (
    "{instruction}\n\nDocument:\n{before}<<{span}>>{after}\n\n"
    "Rewrite only the passage between << and >>. Reply with the new passage only."
)
GAP = "[GAP]"


class DiffusionEngine:
    def __init__(
        self,
        model: Transformer,
        tokenizer,
        facts: ModelFacts,
        info: ModelInfo,
        *,
        policy: DecodePolicy,
        cache: CacheMode,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.facts = facts
        self.policy = policy
        self.denoiser = Denoiser(model, facts, cache=cache)
        self._info = info
        self.pad_id = _first_int(tokenizer.pad_token_id, min(facts.eos_ids, default=None), 0)

    @classmethod
    def from_loaded(
        cls,
        loaded: LoadedModel,
        *,
        name: str | None = None,
        threshold: float | None = None,
        block_size: int | None = None,
        cache: CacheMode | None = None,
        repetition_penalty: float = 1.0,
    ) -> DiffusionEngine:
        """An engine with the checkpoint's decode defaults, any of which a caller may override."""
        facts = loaded.facts
        policy = facts.policy.with_(
            block_size=block_size or facts.block_size,
            threshold=facts.threshold if threshold is None else threshold,
            repetition_penalty=repetition_penalty,
        )
        cache = cache or facts.cache
        info = ModelInfo(
            name=name or loaded.folder.name,
            family=loaded.family.name,
            decoding=facts.describe(policy, cache),
            device=str(next(loaded.model.parameters()).device),
            path=str(loaded.folder),
            context_length=loaded.args.max_position_embeddings,
        )
        return cls(loaded.model, loaded.tokenizer, facts, info, policy=policy, cache=cache)

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -- generating (the Generator contract) -----------------------------------------------

    def generate(
        self,
        messages: Sequence[ChatMessage],
        max_new_tokens: int,
        *,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Generation:
        return self.generate_batch([messages], max_new_tokens, temperature=temperature, seed=seed)[
            0
        ]

    def generate_batch(
        self,
        conversations: Sequence[Sequence[ChatMessage]],
        max_new_tokens: int,
        *,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> list[Generation]:
        prompts = [self.encode_chat(messages) for messages in conversations]
        outputs, stats = self.generate_ids(
            prompts, max_new_tokens, self.policy.with_(temperature=temperature), seed=seed
        )
        return [
            Generation(self._decode(out), self._stats(stats, len(out), len(prompt)))
            for out, prompt in zip(outputs, prompts, strict=True)
        ]

    def stream(
        self, messages: Sequence[ChatMessage], max_new_tokens: int, *, temperature: float = 0.0
    ) -> Iterator[str]:
        """The reply's text as each block finishes (block-granular streaming)."""
        prompt = self.encode_chat(messages)
        canvas, blocks = self.generation_canvas([prompt], max_new_tokens)
        stats = DenoiseStats()
        sent = ""
        policy = self.policy.with_(temperature=temperature)
        for end in self.denoiser.fill_blocks(
            canvas, blocks, policy, stats, stop=self._all_ended(canvas)
        ):
            text = self._decode(self._reply(canvas.tokens[0, canvas.gen_start : end]))
            if text != sent:
                yield text[len(sent) :] if text.startswith(sent) else text
                sent = text

    def generate_ids(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        policy: DecodePolicy | None = None,
        *,
        seed: int | None = None,
    ) -> tuple[list[list[int]], DenoiseStats]:
        """Batched generation with left padding; each reply ends before its first end token."""
        canvas, blocks = self.generation_canvas(prompts, max_new_tokens)
        stats = self.denoiser.fill(
            canvas, blocks, policy or self.policy, seed=seed, stop=self._all_ended(canvas)
        )
        replies = [self._reply(row[canvas.gen_start :])[:max_new_tokens] for row in canvas.tokens]
        return replies, stats

    # -- editing documents (the Editor contract) -----------------------------------------

    def infill(self, document: str, spans: Sequence[Span]) -> Edit:
        """Fill each span of `document`; text outside the spans is returned unchanged."""
        spans = sorted(spans, key=lambda s: s.start)
        _check_spans(document, spans)
        if self.facts.attention == "bidirectional":
            return self._infill_in_place(document, spans, prefix_ids=[])
        return self._infill_by_prompt(document, spans, instruction=None)

    def rewrite(self, document: str, span: Span, instruction: str) -> Edit:
        """Re-denoise one span under an instruction; only that span changes."""
        _check_spans(document, [span])
        if self.facts.attention == "bidirectional":
            prompt = self.encode_chat([{"role": "user", "content": instruction}])
            return self._infill_in_place(document, [span], prefix_ids=prompt)
        return self._infill_by_prompt(document, [span], instruction=instruction)

    def _infill_in_place(self, document: str, spans: Sequence[Span], prefix_ids: list[int]) -> Edit:
        ids = list(prefix_ids)
        ranges: list[tuple[int, int]] = []
        cursor = 0
        for span in spans:
            ids += self._encode(document[cursor : span.start])
            length = self._span_length(document[span.start : span.end], span.length)
            ranges.append((len(ids), len(ids) + length))
            ids += [self.facts.mask_id] * length
            cursor = span.end
        ids += self._encode(document[cursor:])
        tokens = torch.tensor([ids], device=self.device)
        canvas = Canvas(tokens=tokens, valid=torch.ones_like(tokens, dtype=torch.bool), gen_start=0)
        blocks = [
            (s, min(s + self.policy.block_size, end))
            for start, end in ranges
            for s in range(start, end, self.policy.block_size)
        ]
        before = canvas.tokens.clone()
        # Copying the document's words is right inside an edit, so nothing is penalised.
        stats = self.denoiser.fill(canvas, blocks, self.policy.with_(repetition_penalty=1.0))
        outside = torch.ones(len(ids), dtype=torch.bool)
        for start, end in ranges:
            outside[start:end] = False
        if not torch.equal(before[0, outside], canvas.tokens[0, outside]):
            raise RuntimeError("the denoiser wrote outside the masked spans")  # an invariant
        fills = [
            self._decode(self._strip_specials(canvas.tokens[0, s:e].tolist())) for s, e in ranges
        ]
        return Edit(
            text=_splice(document, spans, fills),
            replacements=fills,
            stats=self._stats(stats, sum(e - s for s, e in ranges), len(ids)),
        )

    def _infill_by_prompt(
        self, document: str, spans: Sequence[Span], instruction: str | None
    ) -> Edit:
        fills: list[str] = []
        total = GenerationStats()
        for index, span in enumerate(spans):
            # Earlier spans are already filled; later ones stay as they are in the text.
            before = _splice(document[: span.start], spans[:index], fills)
            after = document[span.end :]
            original = document[span.start : span.end]
            if instruction is None:
                prompt = FILL_PROMPT.format(marker=GAP, before=before, after=after)
            else:
                prompt = REWRITE_PROMPT.format(
                    instruction=instruction, before=before, span=original, after=after
                )
            length = self._span_length(original, span.length)
            result = self.generate([{"role": "user", "content": prompt}], length)
            fills.append(result.text)
            total = total + result.stats
        return Edit(text=_splice(document, spans, fills), replacements=fills, stats=total)

    # -- likelihood -----------------------------------------------------------------------

    @torch.inference_mode()
    def score(self, text: str, *, samples: int = 8, seed: int = 0) -> Score:
        """Negative log-likelihood per token: exact for causal models, a Monte-Carlo bound
        (LLaDA's masked ELBO, 1/t weighted) for diffusion models. Lower is likelier."""
        ids = self._encode(text)
        start = time.perf_counter()
        tokens = torch.tensor([ids], device=self.device)
        positions = torch.arange(len(ids), device=self.device)[None]
        forwards = 0
        if self.facts.attention == "causal":
            mask = torch.ones(len(ids), len(ids), dtype=torch.bool, device=self.device).tril()
            logits = self.model(tokens, positions, mask[None, None])
            forwards = 1
            nll = torch.nn.functional.cross_entropy(logits[0, :-1], tokens[0, 1:]).item()
        else:
            canvas = Canvas(
                tokens=tokens, valid=torch.ones_like(tokens, dtype=torch.bool), gen_start=0
            )
            rng = torch.Generator(device=self.device)
            rng.manual_seed(seed)
            total = 0.0
            for _ in range(samples):
                t = float(torch.rand((), generator=rng, device=self.device)) * 0.98 + 0.01
                masked = torch.rand(tokens.shape, generator=rng, device=self.device) < t
                masked[0, int(torch.randint(len(ids), (), generator=rng))] = True
                noisy = Canvas(
                    tokens=tokens.masked_fill(masked, self.facts.mask_id),
                    valid=canvas.valid,
                    gen_start=0,
                )
                raw = self.denoiser.forward(noisy, 0, len(ids), DenoiseStats())
                logits = self.denoiser.shift_logits(raw, None)
                forwards += 1
                losses = torch.nn.functional.cross_entropy(logits[0], tokens[0], reduction="none")
                total += float(losses[masked[0]].sum()) / t
            nll = total / samples / len(ids)
        seconds = time.perf_counter() - start
        stats = GenerationStats(
            tokens=0, prompt_tokens=len(ids), forward_passes=forwards, seconds=seconds, calls=1
        )
        return Score(nll_per_token=nll, tokens=len(ids), stats=stats)

    # -- helpers --------------------------------------------------------------------------

    def encode_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            list(messages), add_generation_prompt=True, tokenize=False
        )
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    def generation_canvas(self, prompts: list[list[int]], max_new_tokens: int):
        block = self.policy.block_size
        width = max(len(p) for p in prompts)
        budget = math.ceil(max(max_new_tokens, 1) / block) * block
        rows, valid = [], []
        for prompt in prompts:
            pad = width - len(prompt)
            rows.append([self.pad_id] * pad + prompt + [self.facts.mask_id] * budget)
            valid.append([False] * pad + [True] * (len(prompt) + budget))
        tokens = torch.tensor(rows, device=self.device)
        canvas = Canvas(
            tokens=tokens, valid=torch.tensor(valid, device=self.device), gen_start=width
        )
        blocks = [(s, s + block) for s in range(width, width + budget, block)]
        return canvas, blocks

    def _all_ended(self, canvas: Canvas):
        """Stop once every row has ended its turn or started looping."""

        def ended(end: int, tokens: torch.Tensor) -> bool:
            rows = tokens[:, canvas.gen_start : end].tolist()
            return all(self._ends(row) for row in rows)

        return ended

    def _ends(self, row: list[int]) -> bool:
        return any(t in self.facts.eos_ids for t in row) or cut_at_loop(row)[1]

    def _reply(self, row: torch.Tensor) -> list[int]:
        """Generated ids up to the first end token (or unfilled mask), loops cut."""
        reply: list[int] = []
        for token in row.tolist():
            if token in self.facts.eos_ids or token == self.facts.mask_id:
                break
            reply.append(token)
        return cut_at_loop(reply)[0]

    def _strip_specials(self, ids: list[int]) -> list[int]:
        drop = set(self.facts.eos_ids) | {self.facts.mask_id, self.pad_id}
        return [i for i in ids if i not in drop]

    def _span_length(self, original: str, length: int | Literal["auto"]) -> int:
        if length != "auto":
            return max(int(length), 1)
        # Room to grow: the model ends early with end tokens, which are trimmed.
        return min(max(2 * len(self._encode(original)), 16), 256)

    @staticmethod
    def _stats(stats: DenoiseStats, tokens: int, prompt_tokens: int) -> GenerationStats:
        return GenerationStats(
            tokens=tokens,
            prompt_tokens=prompt_tokens,
            forward_passes=stats.forward_passes,
            seconds=stats.seconds,
            calls=1,
        )


def _check_spans(document: str, spans: Sequence[Span]) -> None:
    cursor = 0
    for span in spans:
        if not cursor <= span.start <= span.end <= len(document):
            raise ValueError(
                f"span {span.start}:{span.end} is outside the document or overlaps another"
            )
        cursor = span.end


def _splice(document: str, spans: Sequence[Span], fills: Sequence[str]) -> str:
    parts, cursor = [], 0
    for span, fill in zip(spans, fills, strict=False):
        parts += [document[cursor : span.start], fill]
        cursor = span.end
    return "".join(parts) + document[cursor:]


def _first_int(*values) -> int:
    return next(v for v in values if isinstance(v, int))
