"""One drain, the measurement most scenarios share: publish N events, then drain them with
worker processes.

Workers start first and wait; the events are published (batch API, untimed); then every
worker is released at once and the clock runs until the last of the N x 3 handler calls.
CPU time of the workers and of the server over the drain tells what saturates.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from bench import systems
from bench.fleet import Fleet
from bench.harness import Bench, Target
from bench.machine import busy_pct, cpu_seconds, machine_ticks
from bench.systems import LABELS
from bench.workload import FANOUT, event

PREFILL_BATCH = 1000


@dataclass
class Drain:
    events: int
    seconds: float
    worker_cpu: list[float]
    server_cpu: float
    machine_pct: float
    commandstats: dict[str, Any] = field(default_factory=dict)
    server_cpus: list[float] = field(default_factory=list)
    """CPU seconds of each server process (one, or every node of a cluster)."""

    @property
    def rate(self) -> float:
        return self.events / self.seconds

    @property
    def worker_cpu_pct(self) -> float:
        return 100 * sum(self.worker_cpu) / self.seconds

    @property
    def server_cpu_pct(self) -> float:
        return 100 * self.server_cpu / self.seconds

    @property
    def worker_us_per_event(self) -> float:
        """Workers' CPU time per event (driven once, ridden 3 times), in microseconds."""
        return 1e6 * sum(self.worker_cpu) / self.events

    @property
    def others_pct(self) -> float:
        """CPU used by everything else on the machine (other users' jobs, this benchmark's parent)."""
        return max(0.0, self.machine_pct - self.worker_cpu_pct - self.server_cpu_pct)

    def details(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "seconds": round(self.seconds, 3),
            "handler_calls_per_s": round(self.rate * FANOUT, 1),
            "worker_cpu_pct": [round(100 * c / self.seconds, 1) for c in self.worker_cpu],
            "server_cpu_pct": round(self.server_cpu_pct, 1),
            "worker_cpu_us_per_event": round(self.worker_us_per_event, 1),
            "machine_busy_pct": round(self.machine_pct, 1),
            "others_cpu_pct": round(self.others_pct, 1),
        }


def drain_once(
    bench: Bench,
    system_name: str,
    layout: str,
    processes: int,
    events: int,
    *,
    profile: str | None = None,
    target: Target | None = None,
    **spec_options: Any,
) -> Drain:
    """One drain on ``target`` (default: the benchmark's server); ``spec_options`` go to
    every worker's ChildSpec (e.g. ``tracing=False``)."""
    system = systems.get(system_name)
    where: Target = target or bench
    where.flush()
    system.prepare(where.url)
    specs = bench.specs(system_name, layout, processes, url=where.url, **spec_options)
    if profile:
        specs[0] = replace(specs[0], profile=profile)
    expected = events * FANOUT
    with Fleet(specs) as fleet:
        fleet.start()
        publisher = system.publisher(where.url)
        for start in range(0, events, PREFILL_BATCH):
            publisher.publish_batch([event(i) for i in range(start, min(events, start + PREFILL_BATCH))])
        publisher.close()
        where.reset_stats()
        pids = fleet.pids
        cpu0, server0, machine0 = [cpu_seconds(p) for p in pids], where.cpus(), machine_ticks()
        started = fleet.go()

        def progress(done: int) -> None:
            bench.log(f"  ... {system_name} {processes} procs: {100 * done / expected:.0f}% of {expected:,} calls")

        finished = fleet.wait_handled(expected, timeout=60 + expected / 200, progress=progress)
        cpu1, server1, machine1 = [cpu_seconds(p) for p in pids], where.cpus(), machine_ticks()
        stats = where.commandstats()
        fleet.stop()
    worker_cpu = [b - a for a, b in zip(cpu0, cpu1, strict=True)]
    servers = [b - a for a, b in zip(server0, server1, strict=True)]
    busy = busy_pct(machine0, machine1)
    return Drain(events, finished - started, worker_cpu, sum(servers), busy, stats, servers)


def drain_name(system: str, layout: str, processes: int, threads: int = 8) -> str:
    """How the report names a drain by ``system`` with ``processes`` workers in ``layout``."""
    procs = f"{processes} proc" + ("s" if processes > 1 else "")
    if system == "bus":
        return f"bus, {procs}, {layout}"
    if system == "dramatiq":
        return f"Dramatiq, {procs} x {threads} threads"
    return f"{LABELS[system]}, {procs}"
