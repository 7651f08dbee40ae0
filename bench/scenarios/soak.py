"""``soak``: ``--soak-events`` flow through 2 bus worker processes while the workers' and the
server's RSS are sampled every second: the memory must stay flat.

Events are published in batches while the workers drain, the backlog kept under
SOAK_BACKLOG, so the figure is the workers' steady state rather than a queue's size.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench import systems
from bench.fleet import Fleet
from bench.harness import Bench
from bench.machine import MIB, rss_bytes
from bench.workload import FANOUT, event

SOAK_BATCH = 500
SOAK_BACKLOG = 10_000
SAMPLE_EVERY = 1.0


def run(bench: Bench) -> None:
    n = bench.options.soak_events
    bench.flush()
    systems.get("bus").prepare(bench.url)
    series: list[dict[str, Any]] = []
    with Fleet(bench.specs("bus", "combined", 2)) as fleet:
        fleet.start()
        started = fleet.go()
        publisher = systems.get("bus").publisher(bench.url)
        published, next_sample, next_log = 0, 0.0, 10.0
        while True:
            fleet.check_alive("during the soak")
            handled = fleet.handled()
            elapsed = time.perf_counter() - started
            if elapsed >= next_sample or handled >= n * FANOUT:
                series.append(_sample(bench, fleet, elapsed, handled))
                next_sample += SAMPLE_EVERY
            if handled >= n * FANOUT:
                break
            if elapsed >= next_log:
                bench.log(f"  ... soak: {handled // FANOUT:,} of {n:,} events, worker RSS {series[-1]['workers_mib']}")
                next_log += 10.0
            if published < n and published - handled // FANOUT < SOAK_BACKLOG:
                size = min(SOAK_BATCH, n - published)
                publisher.publish_batch([event(i) for i in range(published, published + size)])
                published += size
            else:
                time.sleep(0.005)  # the backlog is full: pacing, while the workers catch up
        publisher.close()
        fleet.stop()
    _report_soak(bench, series, n)


def _sample(bench: Bench, fleet: Fleet, elapsed: float, handled: int) -> dict[str, Any]:
    return {
        "t": round(elapsed, 2),
        "events": handled // FANOUT,
        "workers_mib": [round(rss_bytes(pid) / MIB, 2) for pid in fleet.pids],
        "server_mib": round(rss_bytes(bench.server_pid) / MIB, 2),
    }


def _report_soak(bench: Bench, series: list[dict[str, Any]], n: int) -> None:
    report = bench.report
    warm = next(s for s in series if s["events"] >= n // 10)
    end = series[-1]
    peak = [max(s["workers_mib"][i] for s in series) for i in range(len(end["workers_mib"]))]
    # Medians of a tenth of the run each, so a passing peak (a large batch) is not read as growth.
    early, late = _median_rss(series, n // 10, n // 5), _median_rss(series, n - n // 10, n)
    growth = [e - w for e, w in zip(late, early, strict=True)]
    seconds = end["t"]
    report.add("soak", f"bus, 2 procs, {n:,} events: throughput", n / seconds, "ev/s")
    report.add("soak", "worker RSS after 10% (max of workers)", max(warm["workers_mib"]), "MiB", higher_is_better=False)
    report.add("soak", "worker RSS at end (max of workers)", max(end["workers_mib"]), "MiB", higher_is_better=False)
    report.add("soak", "worker RSS peak", max(peak), "MiB", higher_is_better=False)
    report.add(
        "soak", "worker RSS growth, median 10-20% -> 90-100%", max(growth), "MiB", higher_is_better=False, target="flat"
    )
    report.add("soak", "Redis RSS at end", end["server_mib"], "MiB", higher_is_better=False)
    step = max(1, len(series) // 300)
    report.extra["soak_series"] = series[::step] + ([end] if series[::step][-1] is not end else [])
    report.note(
        f"soak: {n:,} events published while 2 worker processes drain (backlog kept under {SOAK_BACKLOG:,}); "
        f"worker RSS {warm['workers_mib']} MiB at 10% -> {end['workers_mib']} MiB at end, peak {peak}; "
        f"medians {early} MiB over 10-20% of the events -> {late} MiB over the last 10%"
    )


def _median_rss(series: list[dict[str, Any]], low: int, high: int) -> list[float]:
    """Each worker's median RSS over the samples taken between ``low`` and ``high`` events."""
    window = [s["workers_mib"] for s in series if low <= s["events"] <= high] or [series[-1]["workers_mib"]]
    return [round(statistics.median(sample[i] for sample in window), 2) for i in range(len(window[0]))]
