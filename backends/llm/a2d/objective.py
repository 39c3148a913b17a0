"""The block-diffusion objective, laid out to match exactly how the engine decodes.

The engine (`denoise.py`, exact cache, `logit_shift=True` as for every AR-initialised family)
decodes a block-causal model so: prompt slots get block ids `position // B`, the answer starts a
fresh series of blocks of B at its first slot, every block attends to the finished blocks
before it and bidirectionally to itself; slot i of a block is predicted from the raw logits at
slot i-1, and the first slot of a block from the last slot of the block before (the "edge",
computed on finished, clean text).

So one training document (prompt P tokens + answer A tokens, A a multiple of B) becomes, in
one packed row (the BD3-LM / Fast-dLLM v2 "2L" layout, with both complementary copies sharing
one clean stream so the clean text is computed once, not twice):

    clean  [prompt ; answer]  block-causal              (what the exact KV cache holds)
    noisy  answer, masked with m     block b: clean blocks < b, itself bidirectionally
    noisy' answer, masked with ~m    the same, with the complementary mask

Losses (every answer token is learned exactly once):
- a block's first token: cross-entropy of the clean stream's logits at the slot before it (the
  autoregressive loss where the engine uses it; inside a block the clean stream sees the token
  it would predict, so nowhere else);
- every other token: cross-entropy at the slot before it in the copy where it is masked.
The mask token's logit is excluded, as the engine excludes it, so the trained model is the
decoded one. Only answer tokens are masked: prompts are always clean at decode time.

Optional certainty forcing (dParallel, Chen et al. 2025, arXiv 2509.26488): cross-entropy
alone teaches a masked slot the teacher's token, not to be *sure* of it, and decoding commits
a slot in parallel only above the threshold. So, with weight `certainty` > 0, the entropy of
each masked slot's temperature-scaled prediction is added wherever its argmax already is the
target token (never where it is wrong, which would only harden a mistake).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from backends.llm.kv_cache import KVCache
from backends.llm.transformer import Transformer, rope_tables

CLEAN = 0
CONFIDENT_CE = -math.log(0.9)  # a right prediction's CE below this: probability above 0.9


MASK_KINDS = ("random", "suffix")  # `_masks` says what each trains


@dataclass(frozen=True)
class ObjectiveConfig:
    block_size: int
    mask_id: int
    eos_id: int
    copies: int = 2  # 2: complementary masks; 1: one noisy copy (half the noisy tokens unused)
    masks: str = "random"  # or "suffix": only the states left-to-right filling passes through

    def __post_init__(self) -> None:
        if self.masks not in MASK_KINDS:  # any other name would silently train random masks
            raise ValueError(f"unknown masks {self.masks!r}; known: {', '.join(MASK_KINDS)}")


@dataclass
class Document:
    """One training example's ids, its answer already a whole number of blocks."""

    prompt: list[int]
    answer: list[int]

    def length(self, copies: int) -> int:
        return len(self.prompt) + len(self.answer) * (1 + copies)


@dataclass
class Batch:
    tokens: torch.Tensor  # [rows, length]
    positions: torch.Tensor  # [rows, length]
    mask: torch.Tensor  # bool [rows, 1, length, length]
    source: torch.Tensor  # flat index (row * length + slot) of each prediction's logits
    target: torch.Tensor  # the token each prediction is scored against
    boundary: torch.Tensor  # bool: predicted by the clean stream (a block's first token)
    answer_tokens: int
    stream_tokens: int  # non-padding slots computed


def fit_answer(answer: Sequence[int], config: ObjectiveConfig) -> list[int]:
    """A finished answer is padded with end tokens to a whole block (the engine drops what
    follows the first end token, and a confident end token is a cheap commit); a cut-off one
    is truncated to whole blocks, so the model never learns to end where the text did not."""
    size = config.block_size
    answer = list(answer)
    if answer and answer[-1] == config.eos_id:
        return answer + [config.eos_id] * (-len(answer) % size)
    return answer[: len(answer) - len(answer) % size]


def make_document(
    prompt: Sequence[int], answer: Sequence[int], config: ObjectiveConfig, capacity: int
) -> Document | None:
    """The document, its answer shortened (whole blocks) to fit a row; None if nothing fits."""
    answer = fit_answer(answer, config)
    room = (capacity - len(prompt)) // (1 + config.copies)
    room -= room % config.block_size
    answer = answer[: max(room, 0)]
    if not prompt or not answer:
        return None
    return Document(list(prompt), answer)


def pack_rows(documents: Sequence[Document], capacity: int, copies: int) -> list[list[Document]]:
    """Greedy packing in order: a document that does not fit closes the row."""
    rows: list[list[Document]] = []
    used = capacity
    for doc in documents:
        size = doc.length(copies)
        if used + size > capacity:
            rows.append([])
            used = 0
        rows[-1].append(doc)
        used += size
    return rows


def build_batch(
    rows: Sequence[Sequence[Document]],
    config: ObjectiveConfig,
    generator: torch.Generator,
    pad_id: int,
) -> Batch:
    """Tokens, positions, the attention mask and the loss targets for packed rows."""
    built = [_build_row(row, config, generator) for row in rows]
    length = max(len(r["tokens"]) for r in built)
    tokens, positions, docs, streams, blocks = [], [], [], [], []
    sources, targets, boundary = [], [], []
    for index, row in enumerate(built):
        pad = length - len(row["tokens"])
        tokens.append(row["tokens"] + [pad_id] * pad)
        positions.append(row["positions"] + [0] * pad)
        # Each padding slot is a document of its own: it sees only itself (no NaN rows).
        docs.append(row["docs"] + [-1 - i for i in range(pad)])
        streams.append(row["streams"] + [CLEAN] * pad)
        blocks.append(row["blocks"] + [0] * pad)
        sources += [index * length + s for s in row["sources"]]
        targets += row["targets"]
        boundary += row["boundary"]
    doc_t, stream_t, block_t = (torch.tensor(x) for x in (docs, streams, blocks))
    return Batch(
        tokens=torch.tensor(tokens),
        positions=torch.tensor(positions),
        mask=attention_mask(doc_t, stream_t, block_t),
        source=torch.tensor(sources, dtype=torch.long),
        target=torch.tensor(targets, dtype=torch.long),
        boundary=torch.tensor(boundary, dtype=torch.bool),
        answer_tokens=sum(len(d.answer) for row in rows for d in row),
        stream_tokens=sum(len(r["tokens"]) for r in built),
    )


def attention_mask(docs: torch.Tensor, streams: torch.Tensor, blocks: torch.Tensor) -> torch.Tensor:
    """Bool [rows, 1, L, L]: who may attend to whom (see the module docstring)."""
    same_doc = docs[:, :, None] == docs[:, None, :]
    q_stream, k_stream = streams[:, :, None], streams[:, None, :]
    q_block, k_block = blocks[:, :, None], blocks[:, None, :]
    key_clean = k_stream == CLEAN
    clean_to_clean = (q_stream == CLEAN) & key_clean & (k_block <= q_block)
    noisy_to_clean = (q_stream != CLEAN) & key_clean & (k_block < q_block)
    noisy_to_self = (q_stream != CLEAN) & (k_stream == q_stream) & (k_block == q_block)
    return (same_doc & (clean_to_clean | noisy_to_clean | noisy_to_self))[:, None]


def _build_row(row: Sequence[Document], config: ObjectiveConfig, generator: torch.Generator):
    size = config.block_size
    out = {k: [] for k in ("tokens", "positions", "docs", "streams", "blocks")}
    out.update(sources=[], targets=[], boundary=[])
    for doc_index, doc in enumerate(row):
        base = len(out["tokens"])
        prompt, answer = doc.prompt, doc.answer
        p, a = len(prompt), len(answer)
        first_block = (p - 1) // size + 1  # the answer's blocks come after every prompt block
        answer_blocks = [first_block + j // size for j in range(a)]
        _extend(
            out,
            prompt + answer,
            range(p + a),
            doc_index,
            CLEAN,
            [i // size for i in range(p)] + answer_blocks,
        )
        # A block's first token: the clean slot just before it (last prompt token or the last
        # slot of the previous answer block), as the engine's edge logits.
        for j in range(0, a, size):
            if answer[j] == config.mask_id:  # the engine can never produce it: not a target
                continue
            out["sources"].append(base + p + j - 1)
            out["targets"].append(answer[j])
            out["boundary"].append(True)
        for copy, masked in enumerate(_masks(a, size, config, generator)):
            start = len(out["tokens"])
            noisy = [config.mask_id if m else t for t, m in zip(answer, masked, strict=True)]
            _extend(out, noisy, range(p, p + a), doc_index, CLEAN + 1 + copy, answer_blocks)
            for j in range(a):
                if j % size and masked[j] and answer[j] != config.mask_id:
                    out["sources"].append(start + j - 1)
                    out["targets"].append(answer[j])
                    out["boundary"].append(False)
    return out


def _extend(out, tokens, positions, doc, stream, blocks) -> None:
    out["tokens"] += tokens
    out["positions"] += list(positions)
    out["docs"] += [doc] * len(tokens)
    out["streams"] += [stream] * len(tokens)
    out["blocks"] += blocks


def _masks(
    length: int, size: int, config: ObjectiveConfig, generator: torch.Generator
) -> list[list[bool]]:
    """One mask over the answer per noisy copy.

    "random": per block a rate t ~ U(0, 1) and a mask drawn at t; the second copy masks the
    complement, so every token is masked (and learned) in exactly one copy. This is the
    BD3-LM / Fast-dLLM v2 recipe, which trains every one of a block's 2^B mask states.

    "suffix": per block and copy, an independent cut c ~ U{0..B-1} masking slots c..B-1. When
    decoding commits the leftmost masked slot whenever nothing passes the threshold (the
    converted preset's fallback), a block only ever passes through these B states (all
    masked, then one more clean slot at a time), so a step spends its noisy copies on them
    rather than on the other 2^B - B states. Slots before the cut are not learned by that
    copy (a block's first token always is, by the clean stream)."""
    blocks = -(-length // size)
    if config.masks == "suffix":
        cuts = torch.randint(0, size, (config.copies, blocks), generator=generator)
        offsets = torch.arange(length) % size
        return [(offsets >= row.repeat_interleave(size)[:length]).tolist() for row in cuts]
    rates = torch.rand(blocks, generator=generator).repeat_interleave(size)[:length]
    masked = torch.rand(length, generator=generator) < rates
    first = masked.tolist()
    return [first, [not m for m in first]][: config.copies]


def final_hidden(
    model: Transformer,
    tokens: torch.Tensor,
    positions: torch.Tensor,
    mask: torch.Tensor,
    frozen: int = 0,
) -> torch.Tensor:
    """`Transformer.forward` up to the final norm, so that only the slots that are scored go
    through the vocabulary projection (most slots of a packed row predict nothing).

    `frozen` > 0 (`frozen_prefix`): the first `frozen` slots (whole prompt blocks, which no loss
    scores) are computed once without gradient into a KV cache, and only the slots after them
    are computed with it, attending to that cache; the result is the same hidden state for those
    slots (returned for them only), at a backward pass over fewer slots. The gradient no longer
    reaches the LoRA weights through the prompt's keys and values: a recipe choice, not an
    identity."""
    x, cos, sin = _embedded(model, tokens, positions)
    if frozen <= 0:
        for index, layer in enumerate(model.layers):
            x = layer(x, cos, sin, mask, None, index, None, False)
        return model.norm(x)
    cache = KVCache()
    with torch.no_grad():
        prefix = x[:, :frozen]
        head = (cos[:, :frozen], sin[:, :frozen], mask[:, :, :frozen, :frozen])
        for index, layer in enumerate(model.layers):
            prefix = layer(prefix, head[0], head[1], head[2], cache, index, None, True)
    rest, tail = x[:, frozen:], (cos[:, frozen:], sin[:, frozen:], mask[:, :, frozen:])
    for index, layer in enumerate(model.layers):
        rest = layer(rest, tail[0], tail[1], tail[2], cache, index, None, False)
    return model.norm(rest)


def frozen_prefix(document: Document, block_size: int) -> int:
    """How many leading slots of a document's row can run without gradient: the whole prompt
    blocks before the one holding the last prompt token. That token's slot predicts the
    answer's first token (so it needs its gradient), and slots of one block see each other, so
    a split inside a block would change what the slots before the split see."""
    return (len(document.prompt) - 1) // block_size * block_size


def _embedded(model: Transformer, tokens: torch.Tensor, positions: torch.Tensor):
    x = model.embed(tokens)
    return x, *rope_tables(positions, model.inv_freq, x.dtype)


@dataclass(frozen=True)
class CertaintyForcing:
    """The certainty term's weight and the temperature its entropy is taken at (below 1 the
    distribution is sharpened first, so a slot already at 0.9 still gets a gradient towards 1)."""

    weight: float = 0.0
    temperature: float = 0.5


@dataclass
class LossParts:
    """Summed cross-entropies and their counts, so that the parts of one optimizer step
    computed separately (one document at a time) add up to the step's mean exactly."""

    loss: torch.Tensor  # sum over the scored answer tokens / `scale`, with gradient
    boundary_sum: float = 0.0  # CE of the blocks' first tokens (clean stream)
    boundary_count: int = 0
    masked_sum: float = 0.0  # CE of the masked tokens (noisy copies)
    masked_count: int = 0
    entropy_sum: float = 0.0  # certainty term: entropy of the masked slots predicted right
    correct_count: int = 0
    confident_count: int = 0  # masked slots predicted right with probability above 0.9

    def __add__(self, other: LossParts) -> LossParts:
        return LossParts(
            self.loss.detach() + other.loss.detach(),
            self.boundary_sum + other.boundary_sum,
            self.boundary_count + other.boundary_count,
            self.masked_sum + other.masked_sum,
            self.masked_count + other.masked_count,
            self.entropy_sum + other.entropy_sum,
            self.correct_count + other.correct_count,
            self.confident_count + other.confident_count,
        )

    @property
    def boundary(self) -> float:
        return _ratio(self.boundary_sum, self.boundary_count)

    @property
    def masked(self) -> float:
        return _ratio(self.masked_sum, self.masked_count)

    @property
    def correct_entropy(self) -> float:
        return _ratio(self.entropy_sum, self.correct_count)

    @property
    def confident_share(self) -> float:
        """Of the masked slots: predicted right and above 0.9, what decoding could commit."""
        return _ratio(self.confident_count, self.masked_count)


def _ratio(total: float, count: int) -> float:
    return total / count if count else 0.0


def block_diffusion_loss(
    model: Transformer,
    batch: Batch,
    mask_id: int,
    scale: int | None = None,
    frozen: int = 0,
    certainty: CertaintyForcing = CertaintyForcing(),
) -> LossParts:
    """The batch's loss: the mean over its scored tokens, or their sum / `scale` when the
    step's tokens are spread over several batches (`scale`: the step's scored tokens).
    `frozen`: leading slots computed without gradient (one-row batches only, see
    `final_hidden`); no scored prediction may come from them. `certainty`: see the module
    docstring; its term is summed per token too, so it splits across batches the same way."""
    if frozen and (batch.tokens.shape[0] != 1 or int(batch.source.min()) < frozen):
        raise ValueError("a frozen prefix needs one row whose predictions all come after it")
    hidden = final_hidden(model, batch.tokens, batch.positions, batch.mask, frozen)
    picked = hidden.reshape(-1, hidden.shape[-1])[batch.source - frozen]
    logits = model.lm_head(picked).float()
    logits[:, mask_id] = float("-inf")  # the engine never predicts the mask token
    losses = F.cross_entropy(logits, batch.target, reduction="none")
    detached = losses.detach()
    boundary = detached[batch.boundary]
    masked = detached[~batch.boundary]
    # Where the argmax is the target, its probability is exp(-CE): no second softmax needed.
    correct = (logits.detach().argmax(-1) == batch.target) & ~batch.boundary
    confident = correct & (detached < CONFIDENT_CE)
    total = losses.sum()
    entropy_sum = 0.0
    if correct.any():
        with torch.set_grad_enabled(bool(certainty.weight) and torch.is_grad_enabled()):
            entropy = _sharpened_entropy(logits[correct], certainty.temperature)
        entropy_sum = float(entropy.detach().sum())
        if certainty.weight:
            total = total + certainty.weight * entropy.sum()
    return LossParts(
        loss=total / (scale or max(losses.numel(), 1)),
        boundary_sum=float(boundary.sum()),
        boundary_count=boundary.numel(),
        masked_sum=float(masked.sum()),
        masked_count=masked.numel(),
        entropy_sum=entropy_sum,
        correct_count=int(correct.sum()),
        confident_count=int(confident.sum()),
    )


def _sharpened_entropy(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-row entropy of softmax(logits / temperature). The mask column's -inf would make
    0 * -inf (NaN, in the gradient too); a finite floor keeps its probability at 0."""
    sharpened = (logits.clamp(min=-1e4) / temperature).log_softmax(-1)
    return -(sharpened.exp() * sharpened).sum(-1)
