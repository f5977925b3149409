"""Telling whether a process recorded earlier is still the same, running process.

A pid alone is not enough: after a process dies its pid may be given to a new one, and a
process killed but not yet reaped by its parent (a zombie) still has its pid. On Linux
the start time in /proc/PID/stat tells a reused pid apart and the state tells a zombie;
elsewhere only the pid is checked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) of `pid` from /proc, or None when /proc has no such entry."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: cut after the last ")".
    fields = raw[raw.rfind(")") + 2 :].split()
    return fields[0], fields[19]


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, as another user (the embedded PostgreSQL's)
        return True
    return True


@dataclass(frozen=True)
class ProcessId:
    pid: int
    started: str  # start time in clock ticks since boot ("" where /proc is unavailable)

    @classmethod
    def of(cls, pid: int) -> ProcessId:
        stat = _proc_stat(pid)
        return cls(pid, stat[1] if stat else "")

    @classmethod
    def me(cls) -> ProcessId:
        return cls.of(os.getpid())

    def alive(self) -> bool:
        stat = _proc_stat(self.pid)
        if stat is None:
            return not Path("/proc/self/stat").exists() and _pid_exists(self.pid)
        state, started = stat
        return state not in ("Z", "X") and (not self.started or started == self.started)

    def to_json(self) -> dict[str, Any]:
        return {"pid": self.pid, "started": self.started}

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ProcessId:
        return cls(int(raw["pid"]), str(raw.get("started", "")))
