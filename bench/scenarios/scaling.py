"""``scaling``: the drain with 1, 2, 4 worker processes (``--workers``), and which CPU ran out
first: Redis's one thread, a worker's one core, or the machine."""

from __future__ import annotations

import os

from bench.drain import drain_once
from bench.harness import Bench
from bench.report import Metric


def run(bench: Bench) -> None:
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
