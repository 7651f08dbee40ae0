"""``rss``: an idle worker's resident memory; ``soak``: worker memory while many events flow."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench import systems
from bench.fleet import Fleet
from bench.harness import Bench
from bench.machine import MIB, rss_bytes
from bench.systems import LABELS
from bench.workload import FANOUT, event

SOAK_BATCH = 500
SOAK_BACKLOG = 10_000
SAMPLE_EVERY = 1.0
_FLOOR = (
    "import sys, time, redis; redis.Redis.from_url(sys.argv[1]).ping(); print('ready', flush=True); time.sleep(600)"
)


def run_rss(bench: Bench) -> None:
    options, report = bench.options, bench.report
    names = ["bus", "raw", *bench.peers]
    for rep in range(options.repeat):
        floor = _floor_rss(bench)
        report.add("rss", "python + redis-py, idle (floor)", floor, "MiB", higher_is_better=False)
        cli = _cli_rss(bench)
        report.add("rss", "bus work --driver (CLI), idle", cli, "MiB", higher_is_better=False, target="<= 40 MiB")
        for name in names:
            if rep >= bench.repeats(name):
                continue
            rss = _harness_rss(bench, name)
            report.add("rss", f"{LABELS[name]} worker process, idle", rss, "MiB", higher_is_better=False)
        bench.log(f"rss {rep + 1}/{options.repeat}: floor {floor:.1f} MiB, bus work CLI {cli:.1f} MiB")
    floor_metric = report.metrics["rss/python + redis-py, idle (floor)"]
    dramatiq = report.metrics.get(f"rss/{LABELS['dramatiq']} worker process, idle")
    for metric in report.metrics.values():
        if metric.scenario == "rss" and metric is not floor_metric:
            report.compare(metric, floor_metric, "floor")
            if metric.name.startswith("bus"):
                report.compare(metric, dramatiq, "Dramatiq")
    report.note(
        f"rss: VmRSS after start-up and {options.idle_seconds:g} s idle; 'worker process' figures are the "
        "benchmark's spawned worker processes (one process: 3 apps + driver; Dramatiq with its threads)"
    )


def _harness_rss(bench: Bench, name: str) -> float:
    bench.flush()
    systems.get(name).prepare(bench.url)
    with Fleet([bench.spec(name, "all")]) as fleet:
        fleet.start()
        fleet.go()
        time.sleep(bench.options.idle_seconds)
        rss = rss_bytes(fleet.pids[0]) / MIB
        fleet.stop()
    return rss


def _cli_rss(bench: Bench) -> float:
    """The real ``bus work`` command (what a deployment runs), idle on the benchmark's apps."""
    bench.flush()
    bus_command = Path(sys.executable).with_name("bus")
    command = [str(bus_command)] if bus_command.exists() else [sys.executable, "-c", "from bus.cli import main; main()"]
    command += ["work", "bench.cli_app", "--driver", "--redis-url", bench.url]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while not bench.redis.scard("resque:workers"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"bus work did not start (exit code {process.poll()})")
            time.sleep(0.05)
        time.sleep(bench.options.idle_seconds)
        return rss_bytes(process.pid) / MIB
    finally:
        process.terminate()
        process.wait(30)


def _floor_rss(bench: Bench) -> float:
    process = subprocess.Popen([sys.executable, "-c", _FLOOR, bench.url], stdout=subprocess.PIPE, text=True)
    try:
        if process.stdout is None or process.stdout.readline().strip() != "ready":
            raise RuntimeError("the floor process did not start")
        time.sleep(bench.options.idle_seconds)
        return rss_bytes(process.pid) / MIB
    finally:
        process.kill()
        process.wait(10)


def run_soak(bench: Bench) -> None:
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
                time.sleep(0.005)
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
