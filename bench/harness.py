"""What every scenario shares: the options, the private server, the report, worker specs.

A scenario gets one :class:`Bench`; it flushes the server between measurements, builds the
specs of its worker processes here, and adds its figures to ``bench.report``.
"""

from __future__ import annotations

import itertools
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis

from bench import systems
from bench.machine import cpu_seconds
from bench.report import Report
from bench.systems.base import ChildSpec
from tests.support.servers import RedisProcess

LAYOUTS = ("combined", "driver-first", "split")
LAYOUT_TEXT = {
    "combined": "each process rides the 3 apps and drives (bus work --driver)",
    "driver-first": "as combined, bus_incoming first in the queue list",
    "split": "1 process only drives, the others only ride",
}


@dataclass
class Options:
    """What one run measures and how much, as the command line chose it (``--quick`` applied)."""

    scenarios: list[str]
    repeat: int
    events: int
    json_path: Path
    peers: list[str]
    quick: bool
    workers: list[int]
    rate: int
    latency_seconds: float
    soak_events: int
    idle_seconds: float
    layouts: list[str]
    batch_size: int | None = None
    concurrency: int | None = None
    peer_repeat: int = 1
    threads: int = 8
    notifications: int = 2000
    provider_latencies: list[float] = field(default_factory=lambda: [0.0, 0.1])
    soak_notifications: int = 200_000
    extra: dict[str, Any] = field(default_factory=dict)


class Target(Protocol):
    """Where a drain runs: one server (the benchmark's own) or a cluster of them."""

    @property
    def url(self) -> str: ...

    def flush(self) -> None:
        """Empty every database and reset the command statistics."""

    def reset_stats(self) -> None: ...

    def cpus(self) -> list[float]:
        """CPU seconds used so far by each server process."""

    def commandstats(self) -> dict[str, dict[str, float]]:
        """``INFO commandstats`` since the last reset (summed over the servers holding data)."""


class Bench:
    """One run: a private server, a workspace for worker results, and the report."""

    def __init__(self, options: Options, server: RedisProcess, workdir: Path, report: Report) -> None:
        self.options = options
        self.server = server
        self.workdir = workdir
        self.report = report
        self.redis = redis.Redis.from_url(server.url)
        self.started = time.monotonic()
        self._ids = itertools.count()
        self.peers: list[str] = []
        for name in options.peers:
            reason = systems.missing(name)
            if reason:
                report.note(f"peers: {reason}; skipped")
                self.log(f"peers: {reason}; skipped")
            else:
                self.peers.append(name)

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def server_pid(self) -> int:
        if self.server.process is None:
            raise RuntimeError("the benchmark's server is not running")
        return self.server.process.pid

    def server_cpu(self) -> float:
        return cpu_seconds(self.server_pid)

    def cpus(self) -> list[float]:
        return [self.server_cpu()]

    def reset_stats(self) -> None:
        self.redis.config_resetstat()

    def log(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=sys.stderr, flush=True)

    def flush(self) -> None:
        self.redis.flushall()
        self.redis.config_resetstat()

    def commandstats(self) -> dict[str, dict[str, float]]:
        """``INFO commandstats`` since the last flush: calls and server time per command."""
        stats: dict[str, Any] = self.redis.info("commandstats")
        out: dict[str, dict[str, float]] = {}
        for name, values in stats.items():
            out[name.removeprefix("cmdstat_")] = {
                "calls": float(values["calls"]),
                "usec": float(values["usec"]),
                "usec_per_call": float(values["usec_per_call"]),
            }
        return out

    def spec(self, system: str, role: str = "all", *, url: str | None = None, **options: Any) -> ChildSpec:
        path = self.workdir / f"result-{next(self._ids)}.json"
        batch = self.options.batch_size if system == "bus" else None
        concurrency = self.options.concurrency if system == "bus" else None
        defaults: dict[str, Any] = {"batch_size": batch, "concurrency": concurrency, "threads": self.options.threads}
        defaults.update(options)
        return ChildSpec(system, url or self.url, role, result_path=str(path), **defaults)

    def specs(self, system: str, layout: str, processes: int, **options: Any) -> list[ChildSpec]:
        """Worker processes for a layout (peers and the floor always run combined)."""
        if system != "bus" or layout == "combined":
            return [self.spec(system, "all", **options) for _ in range(processes)]
        if layout == "driver-first":
            return [self.spec(system, "driver-first", **options) for _ in range(processes)]
        if processes < 2:
            raise ValueError("the split layout needs at least 2 processes")
        return [self.spec(system, "driver", **options)] + [
            self.spec(system, "riders", **options) for _ in range(processes - 1)
        ]

    def used_memory(self) -> int:
        """``INFO memory`` used_memory of the benchmark's server, in bytes."""
        return int(self.redis.info("memory")["used_memory"])

    def repeats(self, system: str) -> int:
        return self.options.repeat if system in ("bus", "raw") else min(self.options.repeat, self.options.peer_repeat)
