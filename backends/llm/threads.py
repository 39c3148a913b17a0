"""How many CPU threads the engine's matmuls use, and why that many.

PyTorch sizes its thread pool from the machine's cores, which in a container or under
`taskset` can be many more than the process may run on: threads beyond those only contend.
The limits, strongest first: `OMP_NUM_THREADS` (the user's word), the CPU affinity mask
(`os.sched_getaffinity`), and a cgroup CPU quota (`cpu.max`, or cgroup v1's cfs quota).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch

CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class ThreadChoice:
    threads: int
    source: str  # what decided it: OMP_NUM_THREADS, affinity or cgroup quota

    def to_json(self) -> dict[str, object]:
        return {"threads": self.threads, "decided_by": self.source}


def choose_threads(
    environ: dict[str, str] | None = None, cgroup_root: Path = CGROUP_ROOT
) -> ThreadChoice:
    environ = dict(os.environ) if environ is None else environ
    requested = environ.get("OMP_NUM_THREADS", "").strip()
    if requested.isdigit() and int(requested) > 0:
        return ThreadChoice(int(requested), "OMP_NUM_THREADS")
    cpus = _affinity_cpus()
    quota = cgroup_cpu_quota(cgroup_root)
    if quota is not None and math.floor(quota) < cpus:
        return ThreadChoice(max(1, math.floor(quota)), "cgroup quota")
    return ThreadChoice(cpus, "affinity")


def configure_threads() -> ThreadChoice:
    """Set PyTorch's intra-op threads to the CPUs this process may use; returns the choice."""
    choice = choose_threads()
    if torch.get_num_threads() != choice.threads:
        torch.set_num_threads(choice.threads)
    return choice


def cgroup_cpu_quota(root: Path = CGROUP_ROOT) -> float | None:
    """CPUs' worth of time the cgroup may use (cgroup v2 `cpu.max`, v1 cfs), None: no limit."""
    try:
        v2 = root / "cpu.max"
        if v2.is_file():
            quota, period = v2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        v1 = root / "cpu" / "cpu.cfs_quota_us"
        if v1.is_file():
            quota_us = int(v1.read_text())
            period_us = int((root / "cpu" / "cpu.cfs_period_us").read_text())
            return None if quota_us <= 0 else quota_us / period_us
    except (OSError, ValueError):
        return None
    return None


def _affinity_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1
