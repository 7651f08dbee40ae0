"""``e2e`` and ``scaling``: publish N events, then drain them with worker processes.

Workers start first and wait; the events are published (batch API, untimed); then every
worker is released at once and the clock runs until the last of the N x 3 handler calls.
CPU time of the workers and of the server over the drain tells what saturates.
"""

from __future__ import annotations

import os
import statistics
from dataclasses import dataclass, field, replace
from typing import Any

from bench import systems
from bench.fleet import Fleet
from bench.harness import LAYOUT_TEXT, Bench, Target
from bench.machine import busy_pct, cpu_seconds, machine_ticks
from bench.report import Metric
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


def e2e_name(system: str, layout: str, processes: int, threads: int = 8) -> str:
    procs = f"{processes} proc" + ("s" if processes > 1 else "")
    if system == "bus":
        return f"bus, {procs}, {layout}"
    if system == "dramatiq":
        return f"Dramatiq, {procs} x {threads} threads"
    return f"{LABELS[system]}, {procs}"


def run_e2e(bench: Bench) -> None:
    options, report = bench.options, bench.report
    configs = [("bus", layout, 2) for layout in options.layouts] + [("raw", "combined", 2)]
    configs += [(peer, "combined", procs) for peer in bench.peers for procs in (1, 2)]
    for rep in range(options.repeat):
        for system, layout, procs in configs:
            if rep >= bench.repeats(system):
                continue
            drain = drain_once(bench, system, layout, procs, options.events)
            name = e2e_name(system, layout, procs, options.threads)
            report.add("e2e", name, drain.rate, "ev/s", details=drain.details())
            bench.log(
                f"e2e {rep + 1}/{options.repeat}: {name}: {drain.rate:,.0f} ev/s "
                f"({drain.rate * FANOUT:,.0f} handler calls/s; CPU: workers {drain.worker_cpu_pct:.0f}%, "
                f"redis {drain.server_cpu_pct:.0f}%, others {drain.others_pct:.0f}%)"
            )
    floor = report.metrics.get(f"e2e/{e2e_name('raw', 'combined', 2)}")
    dramatiq = report.metrics.get(f"e2e/{e2e_name('dramatiq', 'combined', 2, options.threads)}")
    pqb = report.metrics.get(f"e2e/{e2e_name('py-queue-bus', 'combined', 2)}")
    for layout in options.layouts:
        metric = report.metrics[f"e2e/{e2e_name('bus', layout, 2)}"]
        metric.target = ">= 8,000 ev/s, >= 4x Dramatiq"
        report.compare(metric, floor, "floor")
        report.compare(metric, dramatiq, "Dramatiq")
        report.compare(metric, pqb, "py-queue-bus")
    for layout in options.layouts:
        report.note(f"e2e layout {layout}: {LAYOUT_TEXT[layout]}")
    _best_layout(bench)
    others = [d["others_cpu_pct"] for m in report.metrics.values() if m.scenario == "e2e" for d in m.details]
    if others:
        report.note(
            f"e2e: CPU used by other jobs on the machine during the drains: median {statistics.median(others):.0f}%, "
            f"max {max(others):.0f}% of {100 * (os.cpu_count() or 1)}% (per-run figures in the JSON details)"
        )


def _best_layout(bench: Bench) -> None:
    ranked = sorted(
        (bench.report.metrics[f"e2e/{e2e_name('bus', layout, 2)}"] for layout in bench.options.layouts),
        key=lambda m: m.median,
        reverse=True,
    )
    if len(ranked) > 1:
        best, rest = ranked[0], ranked[1:]
        others = ", ".join(f"{m.name.rsplit(', ', 1)[1]} {m.median:,.0f}" for m in rest)
        bench.report.note(
            f"e2e: fastest layout with 2 processes: {best.name}: {best.median:,.0f} ev/s = "
            f"{best.median * FANOUT:,.0f} handler calls/s (others: {others})"
        )


def run_scaling(bench: Bench) -> None:
    options, report = bench.options, bench.report
    for rep in range(options.repeat):
        for procs in options.workers:
            drain = drain_once(bench, "bus", "combined", procs, options.events)
            name = f"bus, {procs} procs, combined"
            report.add("scaling", name, drain.rate, "ev/s", details=drain.details())
            report.add("scaling", f"{name}: workers' CPU", drain.worker_cpu_pct, "%")
            report.add("scaling", f"{name}: Redis CPU", drain.server_cpu_pct, "%")
            report.add("scaling", f"{name}: others' CPU", drain.others_pct, "%")
            bench.log(
                f"scaling {rep + 1}/{options.repeat}: {procs} procs: {drain.rate:,.0f} ev/s (CPU: workers "
                f"{drain.worker_cpu_pct:.0f}%, redis {drain.server_cpu_pct:.0f}%, others {drain.others_pct:.0f}%)"
            )
    one = report.metrics.get(f"scaling/bus, {options.workers[0]} procs, combined")
    for procs in options.workers[1:]:
        report.compare(report.metrics[f"scaling/bus, {procs} procs, combined"], one, f"{options.workers[0]} proc")
    for procs in options.workers:
        _saturation(bench, procs)


def _saturation(bench: Bench, procs: int) -> None:
    """Say which CPU ran out first: Redis's one thread, a worker's one core, or the machine."""
    metrics = bench.report.metrics
    name = f"bus, {procs} procs, combined"
    workers: Metric = metrics[f"scaling/{name}: workers' CPU"]
    server: Metric = metrics[f"scaling/{name}: Redis CPU"]
    others: Metric = metrics[f"scaling/{name}: others' CPU"]
    capacity = 100 * (os.cpu_count() or 1)
    used = workers.median + server.median + others.median
    per_worker = workers.median / procs
    if server.median >= 85:
        verdict = "Redis's one thread saturates first"
    elif used >= 0.85 * capacity:
        verdict = f"the machine's {capacity // 100} cores are saturated"
        if others.median >= 0.25 * capacity:
            verdict += " (much of it by other jobs on the shared machine: rerun when it is quieter)"
    elif per_worker >= 85:
        verdict = "each worker process is CPU-bound (one core each, GIL)"
    else:
        verdict = "no CPU is saturated: workers wait on round trips"
    bench.report.note(
        f"scaling {procs} procs: {metrics[f'scaling/{name}'].median:,.0f} ev/s; CPU: workers {workers.median:.0f}% "
        f"({per_worker:.0f}% each), Redis {server.median:.0f}%, others {others.median:.0f}%, of {capacity}%: {verdict}"
    )
