"""Greedy generation requests that arrive while the engine is busy share its forward passes.

A request joins the queue of pending requests, then waits for the engine lock in a worker
thread like every other engine call. Whichever waiting thread gets the lock runs its own
request together with the oldest compatible ones still pending, up to `max_batch`, as one
`generate_batch` (chat) or `continue_batch` (completions) call, and hands each request its own
reply; a thread whose request was served in another's batch finds it done and returns. There
is no timer: a request that finds the engine idle runs at once, alone, so a lone client waits
for nothing, and under load each batch is what queued during the call before it.

Compatible means the same kind and the same `max_tokens`: a canvas has one reply budget, and a
short request must not wait for a long one. Only greedy requests come here. A sampled one
draws from one random generator per engine call, so in a batch its seeded answer would depend
on its batch-mates; it runs alone, as do streams (they hold the engine block by block) and
infill, rewrite and score (app.py).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio.to_thread

from ttdr.serve.runner import EngineRunner

Kind = Literal["chat", "completion"]


@dataclass(eq=False)
class _Pending:
    kind: Kind
    max_tokens: int
    payload: Any  # chat messages, or a raw prompt
    order: int
    result: Any = None
    error: BaseException | None = None
    batched: int = 0  # how many requests shared the call that served this one
    done: bool = False  # set, with the above, under the engine lock

    def joins(self, other: _Pending) -> bool:
        return (self.kind, self.max_tokens) == (other.kind, other.max_tokens)


class Batcher:
    def __init__(self, engine: Any, runner: EngineRunner, max_batch: int) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self.engine = engine
        self.runner = runner
        self.max_batch = max_batch
        self._pending: list[_Pending] = []
        self._pending_lock = threading.Lock()  # held briefly; the engine lock is held long
        self._arrivals = itertools.count()

    async def chat(self, messages: Sequence[dict[str, str]], max_tokens: int) -> tuple[Any, int]:
        """The greedy `Generation` that `engine.generate(messages, max_tokens)` gives, and how
        many requests shared the call."""
        return await self._submit("chat", max_tokens, list(messages))

    async def complete(self, prompt: str, max_tokens: int) -> tuple[Any, int]:
        """The `Edit` that infilling one span at the end of `prompt` gives, and the batch size."""
        return await self._submit("completion", max_tokens, prompt)

    async def _submit(self, kind: Kind, max_tokens: int, payload: Any) -> tuple[Any, int]:
        with self._pending_lock:
            request = _Pending(kind, max_tokens, payload, next(self._arrivals))
            self._pending.append(request)
        return await anyio.to_thread.run_sync(self._serve, request, limiter=self.runner.threads)

    def _serve(self, request: _Pending) -> tuple[Any, int]:
        with self.runner.lock:
            if not request.done:
                self._run(self._take(request))
        if request.error is not None:
            raise request.error
        return request.result, request.batched

    def _take(self, request: _Pending) -> list[_Pending]:
        """`request` and the oldest pending requests it can share a call with."""
        with self._pending_lock:
            mates = [p for p in self._pending if p is not request and p.joins(request)]
            batch = sorted([request, *mates[: self.max_batch - 1]], key=lambda p: p.order)
            self._pending = [p for p in self._pending if p not in batch]
        return batch

    def _run(self, batch: list[_Pending]) -> None:
        first = batch[0]
        payloads = [p.payload for p in batch]
        try:
            if first.kind == "chat":
                results = self.engine.generate_batch(payloads, first.max_tokens)
            else:
                results = self.engine.continue_batch(payloads, first.max_tokens)
        except BaseException as exc:  # every request of the batch reports it
            for request in batch:
                request.error, request.done = exc, True
            return
        for request, result in zip(batch, results, strict=True):
            request.result, request.batched, request.done = result, len(batch), True
