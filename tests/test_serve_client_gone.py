"""A call whose client went away stops at the engine's next forward pass, through the same
stop event a local run's stop sets, so the engine is free for the next request."""

from __future__ import annotations

import asyncio
import threading

import pytest

from ttdr.errors import RunStopped
from ttdr.serve.runner import ClientGone, EngineRunner


class SlowEngine:
    """Stands in for the engine's contract: one "forward pass" per tick, checking `stop`
    before each, as DiffusionEngine does (RunStopped once it is set)."""

    def __init__(self) -> None:
        self.passes = 0
        self.started = threading.Event()

    def generate(self, passes: int, *, stop: threading.Event | None = None) -> int:
        self.started.set()
        for _ in range(passes):
            if stop is not None and stop.is_set():
                raise RunStopped("the run was stopped")
            self.passes += 1
            threading.Event().wait(0.01)
        return self.passes


def client_gone_after(polls: int):
    """`Request.is_disconnected` of a client that hangs up after `polls` polls."""
    asked = 0

    async def gone() -> bool:
        nonlocal asked
        asked += 1
        return asked > polls

    return gone


def test_a_call_stops_once_its_client_has_gone_and_the_engine_is_free_again() -> None:
    engine = SlowEngine()
    runner = EngineRunner(engine, max_concurrent=2)

    async def scenario() -> int:
        with pytest.raises(ClientGone):
            await runner.call(engine.generate, 10_000, gone=client_gone_after(2))
        stopped_at = engine.passes
        assert await runner.call(engine.generate, 3) == stopped_at + 3  # the lock was let go
        return stopped_at

    stopped_at = asyncio.run(scenario())
    assert 0 < stopped_at < 10_000
    assert runner.cut_short == 1


def test_a_call_whose_client_leaves_while_it_waits_never_runs() -> None:
    engine = SlowEngine()
    runner = EngineRunner(engine, max_concurrent=2)

    async def scenario() -> None:
        busy = asyncio.ensure_future(runner.call(engine.generate, 30))
        await asyncio.to_thread(engine.started.wait, 10)
        before = engine.passes
        with pytest.raises(ClientGone):
            await runner.call(engine.generate, 10_000, gone=client_gone_after(0))
        assert await busy == 30  # the call holding the engine finished undisturbed
        assert engine.passes == 30 and before <= 30

    asyncio.run(scenario())
    assert runner.cut_short == 1


def test_a_client_that_stays_gets_its_whole_answer() -> None:
    engine = SlowEngine()
    runner = EngineRunner(engine, max_concurrent=2)
    assert asyncio.run(runner.call(engine.generate, 20, gone=client_gone_after(10**6))) == 20
    assert runner.cut_short == 0
