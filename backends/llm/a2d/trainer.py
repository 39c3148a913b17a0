"""The fit loop: LoRA training on packed block-diffusion batches that survives being killed.

The run takes many CPU hours on two cores, so it checkpoints every few minutes (and on SIGTERM
or Ctrl-C): the trainable tensors, the optimizer, the data position (epoch, index into that
epoch's order, how many records the epoch saw) and the masking RNG, in one file replaced
atomically. A resumed run continues with identical state: the same next batch, the same masks,
the same update. The latest adapter is written beside each checkpoint, so progress is usable
(and committable) while the run goes on.

A run whose checkpoint is gone (a new machine) need not start from nothing: `init_adapter`
warm-starts a new run folder from a shipped adapter's weights, after checking it was trained
on this base with this recipe; the step and token counters continue from the adapter's, so the
learning curve goes on, and the optimizer starts afresh with its own warm-up. Shards are read
again at every epoch boundary, so records that `ttdr train a2d data` appends while the fit runs
join the next epoch without a restart.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
from peft import set_peft_model_state_dict

from backends.llm.a2d.adapter import (
    attach_lora,
    inner_model,
    mask_token_id,
    read_adapter_tensors,
    save_adapter,
    store_frozen_projections,
)
from backends.llm.a2d.data import read_records, turn_end_id
from backends.llm.a2d.meta import AdapterMeta, base_fingerprint, check_base, read_meta
from backends.llm.a2d.objective import (
    Batch,
    CertaintyForcing,
    Document,
    LossParts,
    ObjectiveConfig,
    block_diffusion_loss,
    build_batch,
    frozen_prefix,
    make_document,
    pack_rows,
)
from backends.llm.loader import load_checkpoint
from ttdr.errors import ModelUnavailableError, TrainingDataError

CHECKPOINT = "checkpoint.pt"
ADAPTER = "adapter.safetensors"
LOG = "train.jsonl"
CONFIG = "config.json"
# Fields that only say how long or how loudly to run; a resumed run may change them.
# Per-step values a log line averages over its window, in the order the line shows them.
WINDOW_MEANS = ("loss", "boundary_loss", "masked_loss", "correct_entropy", "confident_share")
RUN_LENGTH_FIELDS = ("max_tokens", "max_steps", "checkpoint_minutes", "log_every", "threads")


@dataclass
class FitConfig:
    block_size: int = 4
    rank: int = 16
    alpha: int = 32
    lr: float = 2e-4
    warmup_steps: int = 20
    weight_decay: float = 0.0
    row_tokens: int = 1024  # slots per packed row (clean + both noisy copies)
    rows: int = 2  # packed rows per optimizer step
    copies: int = 2
    masks: str = "random"  # objective.MASK_KINDS: which mask states the noisy copies train
    bf16: bool = False  # bfloat16 autocast: slower on AVX2-only CPUs, faster with AVX512-BF16/AMX
    prompt_grad: bool = True  # False: prompts computed once without gradient (cheaper steps)
    certainty: float = 0.0  # certainty forcing's weight (objective.CertaintyForcing); 0: off
    certainty_temperature: float = 0.5
    seed: int = 0
    max_tokens: int = 2_000_000  # answer tokens to train on (counting repeats across epochs)
    max_steps: int | None = None
    checkpoint_minutes: float = 5.0
    log_every: int = 10
    threads: int | None = None


@dataclass
class Position:
    step: int = 0
    epoch: int = 0
    index: int = 0  # into this epoch's order
    epoch_records: int = 0  # how many records this epoch's order covers
    tokens: int = 0  # answer tokens trained on
    stream_tokens: int = 0
    seconds: float = 0.0  # training time, summed over resumes
    run_start_step: int = 0  # the step this run folder started at (its warm-up counts from it)


class Trainer:
    def __init__(
        self,
        base: Path,
        data: Path,
        out: Path,
        config: FitConfig,
        *,
        log: Callable[[str], None] = print,
        init_adapter: Path | None = None,
    ) -> None:
        self.base, self.data, self.out, self.log = Path(base), Path(data), Path(out), log
        self.out.mkdir(parents=True, exist_ok=True)
        self.config = self._settle_config(config)
        torch.set_num_threads(self.config.threads or os.cpu_count() or 1)
        loaded = load_checkpoint(self.base, dtype=torch.float32)
        self.tokenizer = loaded.tokenizer
        self.mask_id = mask_token_id(loaded.tokenizer, loaded.args.vocab_size)
        eos = turn_end_id(loaded.tokenizer, loaded.facts)
        self.objective = ObjectiveConfig(
            self.config.block_size, self.mask_id, eos, self.config.copies, self.config.masks
        )
        self.pad_id = eos
        self.certainty = CertaintyForcing(self.config.certainty, self.config.certainty_temperature)
        torch.manual_seed(self.config.seed)  # LoRA's initial A matrices
        self.model = attach_lora(loaded.model, self.config.rank, self.config.alpha, self.mask_id)
        if self.config.bf16:
            store_frozen_projections(self.model, torch.bfloat16)
        self.model.train()
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=self.config.lr, weight_decay=self.config.weight_decay
        )
        self.generator = torch.Generator().manual_seed(self.config.seed)
        self.position = Position()
        self.records = self._read_records()
        if not self.records:
            raise TrainingDataError(
                f"no training records in {self.data}: write some with "
                f"`ttdr train a2d data --out {self.data} --tokens N` first."
            )
        self.base_sha256 = base_fingerprint(self.base)
        self.lineage: dict[str, Any] = {}  # the adapter this run was warm-started from
        self.resumed = self._resume()
        if not self.resumed and init_adapter is not None:
            self._warm_start(Path(init_adapter))
        self._order: list[int] | None = None

    # -- configuration and state -------------------------------------------------------------

    def _settle_config(self, config: FitConfig) -> FitConfig:
        """A resumed run keeps its recipe (config.json in --out); only run-length fields change."""
        saved = self.out / CONFIG
        if not saved.is_file():
            saved.write_text(json.dumps(asdict(config), indent=2) + "\n")
            return config
        stored = FitConfig(**json.loads(saved.read_text()))
        for name in RUN_LENGTH_FIELDS:
            setattr(stored, name, getattr(config, name))
        return stored

    def _resume(self) -> bool:
        path = self.out / CHECKPOINT
        if not path.is_file():
            return False
        state = torch.load(path, weights_only=False)
        trainable = dict(zip(self._trainable_names(), self.params, strict=True))
        with torch.no_grad():
            for name, tensor in state["trainable"].items():
                trainable[name].copy_(tensor)
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        self.position = Position(**state["position"])
        self.lineage = state.get("lineage", {})
        self.log(json.dumps({"event": "resumed", **asdict(self.position)}))
        return True

    def _warm_start(self, path: Path) -> None:
        """Start from `path`'s LoRA weights and mask row; refuse an adapter of another base or
        recipe, naming what differs (its weights would mean something else here)."""
        meta = read_meta(path)
        check_base(meta, self.base, path)
        c = self.config
        ours = {"block_size": c.block_size, "rank": c.rank, "alpha": c.alpha}
        ours["mask_id"] = self.mask_id
        differs = {k: (getattr(meta, k), v) for k, v in ours.items() if getattr(meta, k) != v}
        if differs:
            said = ", ".join(
                f"{k} {theirs} (this run: {mine})" for k, (theirs, mine) in differs.items()
            )
            raise ModelUnavailableError(
                f"adapter {path} was trained with {said}: start with the same options."
            )
        result = set_peft_model_state_dict(self.model, read_adapter_tensors(path))
        if result.unexpected_keys:
            raise ModelUnavailableError(
                f"adapter {path} has tensors this model does not: {result.unexpected_keys[:3]}"
            )
        done = meta.training
        self.position = Position(
            step=int(done.get("steps", 0)),
            tokens=int(done.get("answer_tokens", 0)),
            stream_tokens=int(done.get("stream_tokens", 0)),
            seconds=float(done.get("cpu_seconds", 0.0)),
            run_start_step=int(done.get("steps", 0)),
        )
        self.lineage = {
            "from": path.name,
            "steps": self.position.step,
            "answer_tokens": self.position.tokens,
            "earlier": done.get("lineage", {}),
        }
        self.log(json.dumps({"event": "warm_start", "adapter": str(path), **self.lineage}))

    def _trainable_names(self) -> list[str]:
        return [n for n, p in self.model.named_parameters() if p.requires_grad]

    def save_checkpoint(self) -> None:
        state = {
            "trainable": {
                n: p.detach().clone()
                for n, p in zip(self._trainable_names(), self.params, strict=True)
            },
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "position": asdict(self.position),
            "config": asdict(self.config),
            "lineage": self.lineage,
        }
        tmp = self.out / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, self.out / CHECKPOINT)
        save_adapter(self.out / ADAPTER, self.model, self.adapter_meta())

    def adapter_meta(self) -> AdapterMeta:
        recipe = {f.name: getattr(self.config, f.name) for f in fields(self.config)}
        return AdapterMeta(
            base=self.base.name,
            base_sha256=self.base_sha256,
            mask_id=self.mask_id,
            block_size=self.config.block_size,
            rank=self.config.rank,
            alpha=self.config.alpha,
            training={
                "steps": self.position.step,
                "answer_tokens": self.position.tokens,
                "stream_tokens": self.position.stream_tokens,
                "cpu_seconds": round(self.position.seconds, 1),
                "recipe": recipe,
                "lineage": self.lineage,
            },
        )

    # -- data ----------------------------------------------------------------------------

    def _read_records(self) -> list[dict[str, Any]]:
        return [r for r in read_records(self.data) if r.get("answer")]

    def _epoch_order(self) -> list[int]:
        """The epoch's shuffled record order; records appended later join the next epoch
        (shards only grow, so the records an epoch's order covers are the same on resume)."""
        pos = self.position
        if pos.epoch_records == 0:
            pos.epoch_records = len(self.records)
        if self._order is None:
            g = torch.Generator().manual_seed(self.config.seed * 1_000_003 + pos.epoch)
            self._order = torch.randperm(pos.epoch_records, generator=g).tolist()
        return self._order

    def next_documents(self) -> list[Document]:
        """Enough documents, in order, to fill `rows` packed rows (the step's budget)."""
        c, pos = self.config, self.position
        documents, size = [], 0
        budget = c.rows * c.row_tokens
        while True:
            order = self._epoch_order()
            if pos.index >= len(order):
                pos.epoch, pos.index, pos.epoch_records = pos.epoch + 1, 0, 0
                self._order = None
                self.records = self._read_records() or self.records
                continue
            record = self.records[order[pos.index]]
            doc = make_document(record["prompt"], record["answer"], self.objective, c.row_tokens)
            if doc is None:
                pos.index += 1
                continue
            length = doc.length(c.copies)
            if documents and size + length > budget:
                break
            rows = pack_rows([*documents, doc], c.row_tokens, c.copies)
            if len(rows) > c.rows:
                break
            documents.append(doc)
            size += length
            pos.index += 1
        return documents

    def next_batch(self) -> Batch:
        """The step's documents as packed rows: the reference layout `step` computes
        document by document."""
        rows = pack_rows(self.next_documents(), self.config.row_tokens, self.config.copies)
        return build_batch(rows, self.objective, self.generator, self.pad_id)

    def loss_and_backward(
        self, documents: list[Document], prompt_grad: bool | None = None
    ) -> tuple[LossParts, int, int]:
        """The step's loss and gradient, one document at a time: documents never attend to
        each other, so this is the packed rows' loss and gradient (the same masks, drawn in
        the same order) without the attention over other documents' slots or the padding
        of short rows. `prompt_grad` overrides the recipe's (for the step bench). Returns the
        loss parts, answer tokens and slots computed."""
        if prompt_grad is None:
            prompt_grad = self.config.prompt_grad
        batches = [
            build_batch([[d]], self.objective, self.generator, self.pad_id) for d in documents
        ]
        scored = sum(b.target.numel() for b in batches)
        total: LossParts | None = None
        model = inner_model(self.model)
        for document, batch in zip(documents, batches, strict=True):
            frozen = 0 if prompt_grad else frozen_prefix(document, self.config.block_size)
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.config.bf16):
                parts = block_diffusion_loss(
                    model, batch, self.mask_id, scored, frozen, self.certainty
                )
            parts.loss.backward()
            total = parts if total is None else total + parts
        answer = sum(b.answer_tokens for b in batches)
        return total, answer, sum(b.stream_tokens for b in batches)

    # -- the loop --------------------------------------------------------------------------

    def step(self) -> dict[str, Any]:
        c, pos = self.config, self.position
        start = time.perf_counter()
        documents = self.next_documents()
        lr = c.lr * min(1.0, (pos.step - pos.run_start_step + 1) / max(c.warmup_steps, 1))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        parts, answer_tokens, stream_tokens = self.loss_and_backward(documents)
        self.optimizer.step()
        seconds = time.perf_counter() - start
        pos.step += 1
        pos.tokens += answer_tokens
        pos.stream_tokens += stream_tokens
        pos.seconds += seconds
        return {
            "step": pos.step,
            "epoch": pos.epoch,
            "tokens": pos.tokens,
            "loss": round(float(parts.loss.detach()), 5),
            "boundary_loss": round(parts.boundary, 5),
            "masked_loss": round(parts.masked, 5),
            "correct_entropy": round(parts.correct_entropy, 5),
            "confident_share": round(parts.confident_share, 5),
            "answer_tokens": answer_tokens,
            "stream_tokens": stream_tokens,
            "seconds": seconds,
            "lr": lr,
        }

    def fit(self) -> list[dict[str, Any]]:
        """Train until max_tokens / max_steps; checkpoint on schedule, at the end and on kill."""
        c = self.config
        history: list[dict[str, Any]] = []
        window: list[dict[str, Any]] = []
        stop = _StopFlag()
        last_save = time.monotonic()
        with stop.installed():
            while not self._done() and not stop.requested:
                record = self.step()
                history.append(record)
                window.append(record)
                if len(window) >= c.log_every:
                    self._write_log(window)
                    window = []
                if time.monotonic() - last_save >= c.checkpoint_minutes * 60:
                    self.save_checkpoint()
                    last_save = time.monotonic()
            if window:
                self._write_log(window)
            self.save_checkpoint()
        if stop.requested:
            self.log(json.dumps({"event": "stopped", "step": self.position.step}))
        return history

    def _done(self) -> bool:
        c, pos = self.config, self.position
        if c.max_steps is not None and pos.step >= c.max_steps:
            return True
        return pos.tokens >= c.max_tokens

    def _write_log(self, window: list[dict[str, Any]]) -> None:
        seconds = sum(r["seconds"] for r in window)
        answer = sum(r["answer_tokens"] for r in window)
        stream = sum(r["stream_tokens"] for r in window)
        line = {
            "step": window[-1]["step"],
            "epoch": window[-1]["epoch"],
            "tokens": window[-1]["tokens"],
            **{key: round(sum(r[key] for r in window) / len(window), 4) for key in WINDOW_MEANS},
            "tokens_per_s": round(answer / seconds, 1),
            "stream_tokens_per_s": round(stream / seconds, 1),
            "lr": window[-1]["lr"],
            "hours": round(self.position.seconds / 3600, 3),
        }
        text = json.dumps(line)
        with open(self.out / LOG, "a") as handle:
            handle.write(text + "\n")
        self.log(text)


class _StopFlag:
    """SIGTERM/SIGINT finish the current step, then checkpoint and return."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[_StopFlag]:
        old = {}
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError):  # not the main thread (e.g. a test runner)
                old[sig] = signal.signal(sig, self._handle)
        try:
            yield self
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)

    def _handle(self, signum, frame) -> None:
        self.requested = True
