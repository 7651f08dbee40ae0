"""``latency``: publish at a steady ``--rate``; every handler records publish-to-handler time.

The event carries ``time.monotonic_ns()`` taken just before ``publish`` (one clock for
every process on the machine); events of the first half second are warm-up and carry 0.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from bench import systems
from bench.drain import drain_name
from bench.fleet import Fleet
from bench.harness import Bench
from bench.workload import FANOUT, event

PROCESSES = 2
WARM_UP = 0.5
PERCENTILES = (50, 95, 99)


def percentile(sorted_values: list[float], pct: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, math.ceil(pct / 100 * len(sorted_values)) - 1))
    return sorted_values[index]


def measure(bench: Bench, system_name: str, layout: str) -> tuple[dict[str, float], dict[str, Any]]:
    system = systems.get(system_name)
    rate, seconds = bench.options.rate, bench.options.latency_seconds
    bench.flush()
    system.prepare(bench.url)
    with Fleet(bench.specs(system_name, layout, PROCESSES, record_latency=True)) as fleet:
        fleet.start()
        fleet.go()
        publisher = system.publisher(bench.url)
        time.sleep(0.3)  # part of the protocol, not a wait for a condition: workers idle briefly first
        count = int(rate * (seconds + WARM_UP))
        started = time.perf_counter()
        for i in range(count):
            due = started + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            publisher.publish(event(i, time.monotonic_ns() if i >= rate * WARM_UP else 0))
        achieved = count / (time.perf_counter() - started)
        publisher.close()
        fleet.wait_handled(count * FANOUT, timeout=60)
        results = fleet.stop()
    samples = sorted(ns / 1e6 for result in results for ns in result.get("latencies_ns", []))
    figures = {f"p{p}": percentile(samples, p) for p in PERCENTILES}
    details = {
        "samples": len(samples),
        "achieved_rate": round(achieved, 1),
        "mean_ms": round(statistics.fmean(samples), 3) if samples else None,
        "max_ms": round(samples[-1], 3) if samples else None,
    }
    return figures, details


def run(bench: Bench) -> None:
    options, report = bench.options, bench.report
    configs = [("bus", layout) for layout in options.layouts] + [("raw", "combined")]
    configs += [(peer, "combined") for peer in bench.peers]
    for rep in range(options.repeat):
        for system, layout in configs:
            if rep >= bench.repeats(system):
                continue
            figures, details = measure(bench, system, layout)
            name = drain_name(system, layout, PROCESSES, options.threads)
            for label, value in figures.items():
                report.add(
                    "latency",
                    f"{name}: {label}",
                    value,
                    "ms",
                    higher_is_better=False,
                    details=details if label == "p50" else None,
                )
            shown = ", ".join(f"{label} {value:.2f}" for label, value in figures.items())
            bench.log(f"latency {rep + 1}/{options.repeat}: {name} at {options.rate}/s: {shown} ms ({details})")
    targets = {"p50": "<= 1.5 ms", "p99": "<= 5 ms"}
    for system, layout in configs:
        name = drain_name(system, layout, PROCESSES, options.threads)
        for pct in PERCENTILES:
            label = f"p{pct}"
            metric = report.metrics.get(f"latency/{name}: {label}")
            if metric is None:
                continue
            if system == "bus":
                metric.target = targets.get(label, "")
                floor = report.metrics.get(f"latency/{drain_name('raw', 'combined', PROCESSES)}: {label}")
                report.compare(metric, floor, "floor")
                for peer in bench.peers:
                    peer_name = drain_name(peer, "combined", PROCESSES, options.threads)
                    report.compare(metric, report.metrics.get(f"latency/{peer_name}: {label}"), systems.LABELS[peer])
    report.note(f"latency: {PROCESSES} worker processes, {options.rate} events/s for {options.latency_seconds:g} s")
