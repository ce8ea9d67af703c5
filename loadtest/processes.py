"""What the stand's processes cost: CPU seconds and peak memory, read from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time the process has used so far; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime: fields 14 and 15 of stat(5)


def peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident memory (VmHWM) in MiB; None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class CpuMeter:
    """CPU seconds of named processes between marks: where each phase's time went."""

    def __init__(self) -> None:
        self.pids: dict[str, int] = {}
        self._marks: dict[str, float] = {}

    def watch(self, name: str, pid: int | None) -> None:
        """Follow the process under this name (a restarted process: its new pid, counted from its start)."""
        if pid is not None and self.pids.get(name) != pid:
            self.pids[name] = pid
            self._marks[name] = 0.0

    def mark(self) -> None:
        self._marks = {name: cpu_seconds(pid) or 0.0 for name, pid in self.pids.items()}

    def since_mark(self) -> dict[str, float]:
        return {name: round((cpu_seconds(pid) or 0.0) - self._marks.get(name, 0.0), 2)
                for name, pid in self.pids.items()}

    def peak_memory(self) -> dict[str, float | None]:
        return {name: None if (rss := peak_rss_mib(pid)) is None else round(rss, 1) for name, pid in self.pids.items()}
