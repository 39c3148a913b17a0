"""Whether the process that runs a research run is still alive.

A run killed with SIGKILL, by the OOM killer or by a power cut has no chance to record that it
stopped, so its row would say `running` for ever. Each run therefore records which process owns
it; a reader on the same machine that finds the owner gone can say the run was interrupted and
offer to resume it. Owners on other machines (a shared home directory) are never judged.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path


def current_owner() -> str:
    """`host:pid:start`, where the start time tells a reused pid from the original process."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{process_start(pid) or ''}"


def owner_is_gone(owner: str | None) -> bool:
    """True only when the owner ran on this machine and that process no longer exists."""
    if not owner:
        return False
    host, _, rest = owner.partition(":")
    pid_text, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if not _pid_exists(pid):
        return True
    return bool(start) and process_start(pid) not in (None, start)


def process_start(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux `/proc`); None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; the fields after its ')' are plain.
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    return True
