"""What the machine is doing: load, and a process's memory and CPU time from ``/proc``."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")
MIB = 1024 * 1024


def rss_bytes(pid: int) -> int:
    """Resident set size (``VmRSS``) of a live process; 0 if it is gone."""
    return _status_kib(pid, "VmRSS") * 1024


def peak_rss_bytes(pid: int) -> int:
    return _status_kib(pid, "VmHWM") * 1024


def _status_kib(pid: int, field: str) -> int:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a live process (all its threads); 0 if it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def machine_ticks() -> tuple[int, int]:
    """(busy, total) clock ticks of all CPUs since boot, from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def busy_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    """CPU in use between two :func:`machine_ticks`, in percent of one core (max 100 x cores)."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return 100.0 * (os.cpu_count() or 1) * busy / total if total else 0.0


def load() -> dict[str, Any]:
    """Load averages and ``uptime``'s line: the machine is shared, so figures are noisy."""
    one, five, fifteen = os.getloadavg()
    try:
        line = subprocess.run(["uptime"], capture_output=True, text=True, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        line = ""
    return {"load1": one, "load5": five, "load15": fifteen, "uptime": line}


def describe() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "memory_mib": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // MIB,
    }
