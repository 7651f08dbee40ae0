"""``e2e``: publish N events, then drain them with 2 worker processes: the bus in each layout
(``--layouts``), the raw fan-out floor, and the peers (with 1 and 2 processes)."""

from __future__ import annotations

import os
import statistics

from bench.drain import drain_name, drain_once
from bench.harness import LAYOUT_TEXT, Bench
from bench.workload import FANOUT


def run(bench: Bench) -> None:
    options, report = bench.options, bench.report
    configs = [("bus", layout, 2) for layout in options.layouts] + [("raw", "combined", 2)]
    configs += [(peer, "combined", procs) for peer in bench.peers for procs in (1, 2)]
    for rep in range(options.repeat):
        for system, layout, procs in configs:
            if rep >= bench.repeats(system):
                continue
            drain = drain_once(bench, system, layout, procs, options.events)
            name = drain_name(system, layout, procs, options.threads)
            report.add("e2e", name, drain.rate, "ev/s", details=drain.details())
            bench.log(
                f"e2e {rep + 1}/{options.repeat}: {name}: {drain.rate:,.0f} ev/s "
                f"({drain.rate * FANOUT:,.0f} handler calls/s; CPU: workers {drain.worker_cpu_pct:.0f}%, "
                f"redis {drain.server_cpu_pct:.0f}%, others {drain.others_pct:.0f}%)"
            )
    floor = report.metrics.get(f"e2e/{drain_name('raw', 'combined', 2)}")
    dramatiq = report.metrics.get(f"e2e/{drain_name('dramatiq', 'combined', 2, options.threads)}")
    pqb = report.metrics.get(f"e2e/{drain_name('py-queue-bus', 'combined', 2)}")
    for layout in options.layouts:
        metric = report.metrics[f"e2e/{drain_name('bus', layout, 2)}"]
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
        (bench.report.metrics[f"e2e/{drain_name('bus', layout, 2)}"] for layout in bench.options.layouts),
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
