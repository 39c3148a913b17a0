"""One engine, one call at a time.

Every engine call goes through one lock: a forward pass already uses every core (or the whole
GPU), so two calls at once only slow each other down, and every answer is the one the same
call gives in-process. Sharing forward passes between concurrent requests is the batcher's
job (batcher.py), under this same lock; `max_concurrent` bounds how many wait.

Calls run in worker threads so the event loop keeps accepting (and refusing) requests while
the engine works. A client that goes away (a run stopped with Ctrl-C, a timeout) stops its call
at the engine's next forward pass, through the same stop event a local run's stop sets: the
engine is not kept busy for an answer nobody reads.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

T = TypeVar("T")
_END = object()
GONE_POLL_S = 0.1  # how often a call in flight asks whether its client is still there
log = logging.getLogger("ttdr.serve")


class ClientGone(Exception):
    """The client of a call went away before its answer; nothing is sent back."""


class EngineRunner:
    def __init__(self, engine: Any, max_concurrent: int) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        # Every admitted request may wait in a thread of its own for the lock.
        self.threads = CapacityLimiter(max_concurrent + 1)
        self.cut_short = 0  # calls stopped because their client went away (GET /health)

    async def call(
        self,
        method: Callable[..., T],
        *args: Any,
        gone: Callable[[], Awaitable[bool]] | None = None,
        **kwargs: Any,
    ) -> T:
        """`method(*args, **kwargs)` on a worker thread, once the engine is free.

        With `gone` (the request's `is_disconnected`), `method` also gets a `stop` event that
        is set once the client has gone, and the call then raises `ClientGone`.
        """
        stop = threading.Event()
        if gone is not None:
            kwargs["stop"] = stop

        def locked() -> T:
            with self.lock:
                if stop.is_set():  # gone while it waited for the engine
                    raise ClientGone
                return method(*args, **kwargs)

        work = asyncio.ensure_future(anyio.to_thread.run_sync(locked, limiter=self.threads))
        while gone is not None and not work.done():
            await asyncio.wait({work}, timeout=GONE_POLL_S)
            if not work.done() and not stop.is_set() and await gone():
                log.info("client went away: its call stops at the next forward pass")
                self.cut_short += 1
                stop.set()
        try:
            return await work
        except Exception as exc:
            if stop.is_set():  # the engine's RunStopped, or anything a cut-short call raised
                raise ClientGone from exc
            raise

    async def stream(self, pieces: Callable[[], Iterator[str]]) -> AsyncIterator[str]:
        """The pieces of `pieces()` as the engine makes them; the engine is held until it
        ends, or until the client goes away (then it stops at its next piece)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        gone = threading.Event()

        def produce() -> None:
            try:
                with self.lock:
                    for piece in pieces():
                        if gone.is_set():
                            break
                        loop.call_soon_threadsafe(queue.put_nowait, piece)
                loop.call_soon_threadsafe(queue.put_nowait, _END)
            except BaseException as exc:  # handed to the request, which reports it
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        worker = asyncio.ensure_future(anyio.to_thread.run_sync(produce, limiter=self.threads))
        try:
            while (piece := await queue.get()) is not _END:
                if isinstance(piece, BaseException):
                    raise piece
                yield piece
        finally:
            gone.set()  # the worker lets the engine go at its next piece
            del worker
