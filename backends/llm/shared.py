"""Loaded models shared by every run of one process.

The UI server, a notebook or `ttdr eval` start many runs in one process; loading a 7B
checkpoint for each would cost tens of seconds per run and a second copy in memory while the
first is still referenced. An engine keeps no per-call state (caches live in each call), so
concurrent runs can share one, as the parallel search branches of a single run already do.

At most `KEEP` engines stay loaded (a writer and a judge), the least recently used leaves first.
A checkpoint folder whose files changed is loaded afresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from backends.llm.engine import DiffusionEngine
from backends.llm.registry import load_generator, resolve_model_folder

KEEP = 2

_lock = threading.Lock()
_loaded: OrderedDict[tuple, DiffusionEngine] = OrderedDict()


def shared_generator(
    name_or_path: str,
    cache: Path,
    *,
    device: str = "auto",
    dtype: str = "auto",
    compile_steps: bool = False,
) -> DiffusionEngine:
    """The loaded engine for this model, loading it on first use (a preset downloads then)."""
    with _lock:  # one load at a time: two runs asking for the same model load it once
        folder = resolve_model_folder(name_or_path, cache)
        key = (
            name_or_path,
            str(folder.resolve()),
            device,
            dtype,
            compile_steps,
            _fingerprint(folder),
        )
        engine = _loaded.get(key)
        if engine is None:
            engine = load_generator(
                name_or_path, cache, device=device, dtype=dtype, compile_steps=compile_steps
            )
            _loaded[key] = engine
        _loaded.move_to_end(key)
        while len(_loaded) > KEEP:
            _loaded.popitem(last=False)
        return engine


def forget_all() -> None:
    """Drop every shared engine (a run still using one keeps it until it ends)."""
    with _lock:
        _loaded.clear()


def _fingerprint(folder: Path) -> tuple:
    return tuple(
        sorted(
            (f.name, f.stat().st_size, f.stat().st_mtime_ns)
            for f in folder.iterdir()
            if f.is_file()
        )
    )
