"""One engine, one call at a time.

Every engine call goes through one lock: a forward pass already uses every core (or the whole
GPU), so two calls at once only slow each other down, and every answer is the one the same
call gives in-process. Sharing forward passes between concurrent requests is the batcher's
job (batcher.py), under this same lock; `max_concurrent` bounds how many wait.

Calls run in worker threads so the event loop keeps accepting (and refusing) requests while
the engine works.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter

T = TypeVar("T")
_END = object()


class EngineRunner:
    def __init__(self, engine: Any, max_concurrent: int) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        # Every admitted request may wait in a thread of its own for the lock.
        self.threads = CapacityLimiter(max_concurrent + 1)

    async def call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`method(*args, **kwargs)` on a worker thread, once the engine is free."""

        def locked() -> T:
            with self.lock:
                return method(*args, **kwargs)

        return await anyio.to_thread.run_sync(locked, limiter=self.threads)

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
