"""The dLLM engine: `generate`, `stream`, `infill`, `rewrite` and `score` over one model.

It turns text into canvases for the denoising loop (`denoise.py`) and back, and it is both the
`Generator` and the `Editor` the agent uses. Bidirectional models (LLaDA, Dream) edit a
document in place: the span is masked where it stands and filled with context on both sides.
Causal and block-causal models (SDAR, Fast-dLLM v2, the default model) cannot see text to
their right: they fill a span by continuing the document up to it (a gap followed by a line
break ends at the end of its line), and rewrite one with the text after it moved into the
prompt.

Every call takes an optional `stop` event, checked before each forward pass, and every prompt
is fitted to the model's context first (`fit_to_context`), so no caller can ask for more than
the model can hold.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
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

REWRITE_PROMPT = (
    "{instruction}\n\nDocument:\n{before}<<{span}>>{after}\n\n"
    "Rewrite only the passage between << and >>. Reply with the new passage only."
)


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
        stop: threading.Event | None = None,
    ) -> Generation:
        return self.generate_batch(
            [messages], max_new_tokens, temperature=temperature, seed=seed, stop=stop
        )[0]

    def generate_batch(
        self,
        conversations: Sequence[Sequence[ChatMessage]],
        max_new_tokens: int,
        *,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: threading.Event | None = None,
    ) -> list[Generation]:
        """One reply per conversation, the one `generate` gives it alone (up to padding's
        rounding): rows share forward passes, and each keeps its own reply budget."""
        policy = self.policy.with_(temperature=temperature)
        rows = self._generate_fitted(
            [self.encode_chat(messages) for messages in conversations],
            max_new_tokens,
            policy,
            seed=seed,
            stop=stop,
        )
        return [Generation(self._decode(reply), stats) for reply, stats in rows]

    def continue_batch(
        self, documents: Sequence[str], max_new_tokens: int, *, stop: threading.Event | None = None
    ) -> list[Edit]:
        """Each raw document continued, as `infill` with one span at its end fills it: rows
        share forward passes where the model reads left to right (a continuation there is
        plain generation); a bidirectional model fills its trailing span in place, one
        document at a time."""
        end = [Span(len(d), len(d), max_new_tokens) for d in documents]
        if self.facts.attention == "bidirectional":
            return [self.infill(d, [s], stop=stop) for d, s in zip(documents, end, strict=True)]
        rows = self._generate_fitted(
            [self._encode(d) for d in documents], max(max_new_tokens, 1), self.policy, stop=stop
        )
        edits = []
        for document, span, (reply, stats) in zip(documents, end, rows, strict=True):
            text = self._decode(reply)
            edits.append(Edit(_splice(document, [span], [text]), [text], stats))
        return edits

    def _generate_fitted(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        policy: DecodePolicy,
        *,
        seed: int | None = None,
        stop: threading.Event | None = None,
    ) -> list[tuple[list[int], GenerationStats]]:
        """Reply ids and stats per prompt, each fitted to the context; prompts whose fitted
        budgets agree share one batch (a canvas has one budget, and a prompt cut to fit must
        not shorten its neighbours' replies)."""
        fitted = [fit_to_context(p, max_new_tokens, self.info.context_length) for p in prompts]
        rows: list[tuple[list[int], GenerationStats]] = [([], GenerationStats())] * len(fitted)
        for budget in sorted({new for _, new, _ in fitted}, reverse=True):
            chosen = [i for i, (_, new, _) in enumerate(fitted) if new == budget]
            outputs, stats = self.generate_ids(
                [fitted[i][0] for i in chosen], budget, policy, seed=seed, cancel=stop
            )
            for i, out in zip(chosen, outputs, strict=True):
                prompt, _, trimmed = fitted[i]
                row_stats = self._stats(stats, len(out), len(prompt))
                row_stats.trimmed_prompt_tokens = trimmed
                rows[i] = (out, row_stats)
        return rows

    def stream(
        self,
        messages: Sequence[ChatMessage],
        max_new_tokens: int,
        *,
        temperature: float = 0.0,
        seed: int | None = None,
    ) -> Iterator[str]:
        """The reply's text as each block finishes (block-granular streaming): each piece
        extends the text before it, so the pieces joined are the reply."""
        prompt, max_new_tokens, _ = fit_to_context(
            self.encode_chat(messages), max_new_tokens, self.info.context_length
        )
        canvas, blocks = self.generation_canvas([prompt], max_new_tokens)
        stats = DenoiseStats()
        sent = ""
        policy = self.policy.with_(temperature=temperature)
        ends = self.denoiser.fill_blocks(
            canvas, blocks, policy, stats, seed=seed, stop=self._all_ended(canvas)
        )
        for end in [*ends, None]:  # None: the whole reply once the loop is done
            reply = self._reply(canvas.tokens[0, canvas.gen_start : end])[:max_new_tokens]
            text = self._decode(reply)
            # A character whose bytes span two tokens decodes as U+FFFD until its last byte
            # arrives: hold it back rather than send text that a later piece would change.
            if text.startswith(sent) and text != sent and (end is None or text[-1] != "\ufffd"):
                yield text[len(sent) :]
                sent = text

    def generate_ids(
        self,
        prompts: list[list[int]],
        max_new_tokens: int,
        policy: DecodePolicy | None = None,
        *,
        seed: int | None = None,
        cancel: threading.Event | None = None,
        until: Callable[[list[int]], bool] | None = None,
    ) -> tuple[list[list[int]], DenoiseStats]:
        """Batched generation with left padding; each reply ends before its first end token,
        and the batch ends early once `until(reply_ids)` holds for every row."""
        canvas, blocks = self.generation_canvas(prompts, max_new_tokens)
        stats = self.denoiser.fill(
            canvas,
            blocks,
            policy or self.policy,
            seed=seed,
            stop=self._all_ended(canvas, until),
            cancel=cancel,
        )
        replies = [self._reply(row[canvas.gen_start :])[:max_new_tokens] for row in canvas.tokens]
        return replies, stats

    # -- editing documents (the Editor contract) -----------------------------------------

    def infill(
        self, document: str, spans: Sequence[Span], *, stop: threading.Event | None = None
    ) -> Edit:
        """Fill each span of `document`; text outside the spans is returned unchanged."""
        spans = sorted(spans, key=lambda s: s.start)
        _check_spans(document, spans)
        if self.facts.attention == "bidirectional":
            return self._infill_in_place(document, spans, prefix_ids=[], stop=stop)
        return self._infill_by_continuation(document, spans, stop=stop)

    def rewrite(
        self,
        document: str,
        span: Span,
        instruction: str,
        *,
        stop: threading.Event | None = None,
    ) -> Edit:
        """Re-denoise one span under an instruction; only that span changes."""
        _check_spans(document, [span])
        if self.facts.attention == "bidirectional":
            prompt = self.encode_chat([{"role": "user", "content": instruction}])
            return self._infill_in_place(document, [span], prefix_ids=prompt, stop=stop)
        return self._rewrite_by_prompt(document, span, instruction, stop=stop)

    def _infill_in_place(
        self,
        document: str,
        spans: Sequence[Span],
        prefix_ids: list[int],
        *,
        stop: threading.Event | None,
    ) -> Edit:
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
        stats = self.denoiser.fill(
            canvas, blocks, self.policy.with_(repetition_penalty=1.0), cancel=stop
        )
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

    def _infill_by_continuation(
        self, document: str, spans: Sequence[Span], *, stop: threading.Event | None
    ) -> Edit:
        """Each span, left to right, as the continuation of the document before it (earlier
        spans already filled): a model that reads left to right fills a blank best by
        writing on from what precedes it, not by following an instruction about a gap."""
        fills: list[str] = []
        total = GenerationStats()
        for index, span in enumerate(spans):
            before = _splice(document[: span.start], spans[:index], fills)
            one_line = document[span.end : span.end + 1] == "\n"
            length = self._span_length(document[span.start : span.end], span.length)
            prompt, length, _ = fit_to_context(
                self._encode(before), length, self.info.context_length
            )
            (reply,), stats = self.generate_ids(
                [prompt], length, cancel=stop, until=self._line_ended if one_line else None
            )
            text = self._decode(reply)
            if one_line:
                text = text.lstrip("\n").split("\n", 1)[0]
            fills.append(text)
            total = total + self._stats(stats, len(reply), len(prompt))
        total.calls = 1  # one request, however many spans: `calls` counts what callers asked
        return Edit(text=_splice(document, spans, fills), replacements=fills, stats=total)

    def _line_ended(self, reply: list[int]) -> bool:
        return "\n" in self._decode(reply).lstrip("\n")

    def _rewrite_by_prompt(
        self, document: str, span: Span, instruction: str, *, stop: threading.Event | None
    ) -> Edit:
        """The text after the span moves into the prompt, since the model cannot see it."""
        original = document[span.start : span.end]
        prompt = REWRITE_PROMPT.format(
            instruction=instruction,
            before=document[: span.start],
            span=original,
            after=document[span.end :],
        )
        length = self._span_length(original, span.length)
        result = self.generate([{"role": "user", "content": prompt}], length, stop=stop)
        return Edit(
            text=_splice(document, [span], [result.text]),
            replacements=[result.text],
            stats=result.stats,
        )

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

    def _all_ended(self, canvas: Canvas, until: Callable[[list[int]], bool] | None = None):
        """Stop once every row has ended its turn, started looping or satisfied `until`."""

        def ended(end: int, tokens: torch.Tensor) -> bool:
            rows = tokens[:, canvas.gen_start : end].tolist()
            return all(
                self._ends(row) or (until is not None and until(self._reply_ids(row)))
                for row in rows
            )

        return ended

    def _ends(self, row: list[int]) -> bool:
        return any(t in self.facts.eos_ids for t in row) or cut_at_loop(row)[1]

    def _reply(self, row: torch.Tensor) -> list[int]:
        """Generated ids up to the first end token (or unfilled mask), loops cut."""
        return self._reply_ids(row.tolist())

    def _reply_ids(self, row: list[int]) -> list[int]:
        reply: list[int] = []
        for token in row:
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


MIN_NEW_TOKENS = 16  # a reply shorter than this is not worth a prompt cut to make room for it


def fit_to_context(
    prompt: list[int], max_new_tokens: int, context: int
) -> tuple[list[int], int, int]:
    """The prompt and reply budget cut to fit `context`: the reply shrinks first, down to
    `MIN_NEW_TOKENS`; then the prompt loses tokens from its middle, where the bulk of a long
    prompt (pasted evidence) lies, keeping its start (the instructions and chat template's
    opening) and its end (the question and the assistant's turn). Returns the prompt, the
    budget and how many prompt tokens were cut."""
    reply = max(min(max_new_tokens, context - len(prompt)), min(max_new_tokens, MIN_NEW_TOKENS))
    room = context - reply
    if len(prompt) <= room:
        return prompt, reply, 0
    if room < 2:
        raise ValueError(f"a context of {context} tokens has no room for a prompt")
    head = room // 2
    tail = room - head
    return prompt[:head] + prompt[len(prompt) - tail :], reply, len(prompt) - room


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
