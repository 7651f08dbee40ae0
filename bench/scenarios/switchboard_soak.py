"""``switchboard_soak``: ``--soak-notifications`` flow through one switchboard worker process
(what ``switchboard run`` runs, default settings) while its RSS and the server's are sampled
every second: the process's memory must stay flat (target <= 150 MiB).

The mix of ``switchboard`` (email, SMS and push in turn) is published by the scenario while
the worker sends, the backlog kept under SOAK_BACKLOG, so the figure is the process's steady
state rather than a queue's size; the emulators answer after the last ``--provider-latency``
(100 ms by default) in a process of their own. Progress is the bus's ``stat:processed`` (3
jobs per notification), as in ``bench.sends``. Every delivery record is kept in Redis (with
its retention), so the server's memory grows with them: that is the server, not the process.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.fleet import Fleet
from bench.harness import Bench
from bench.machine import MIB, peak_rss_bytes, rss_bytes
from bench.notifications import MIXED, publish
from bench.sends import check_deliveries, child_config
from bench.systems.emulators import EmulatorProcess
from bus import Bus, BusSettings
from switchboard.settings import SwitchboardSettings

SOAK_BATCH = 100
SOAK_BACKLOG = 5_000
SAMPLE_EVERY = 1.0
LOG_EVERY = 10.0
STALLED_AFTER = 60.0
"""Seconds without a notification finished before the soak is declared stuck."""
CONCURRENCY = SwitchboardSettings().concurrency
GROUP = "switchboard_soak"


def run(bench: Bench) -> None:
    n = bench.options.soak_notifications
    latency = bench.options.provider_latencies[-1]
    bench.flush()
    with EmulatorProcess(bench.workdir, latency) as emulators:
        spec = bench.spec("switchboard", MIXED, config=child_config(emulators, MIXED, n))
        bus = Bus(settings=BusSettings(redis_url=bench.url))
        with Fleet([spec]) as fleet:
            fleet.start()  # the worker has stored the switchboard's subscriptions
            series = _soak(bench, fleet, bus, n)
            fleet.stop()
    check_deliveries(bench, bus.keys, MIXED, n)
    bus.close()
    _report(bench, series, n, latency)


def _soak(bench: Bench, fleet: Fleet, bus: Bus, n: int) -> list[dict[str, Any]]:
    """Publish ``n`` notifications, never more than SOAK_BACKLOG unfinished; the samples taken."""
    processed = bus.keys.stat_processed
    series = [_sample(bench, fleet.pids[0], 0.0, 0)]  # idle, ready: the baseline of Redis's growth
    started = fleet.go()
    published, next_sample, next_log = 0, SAMPLE_EVERY, LOG_EVERY
    last_done, last_progress = 0, started
    while True:
        fleet.check_alive("during the soak")
        done = int(bench.redis.get(processed) or 0) // 3  # the send event driven, ridden, its outcome driven
        now = time.perf_counter()
        elapsed = now - started
        if done > last_done:
            last_done, last_progress = done, now
        elif now - last_progress > STALLED_AFTER:
            raise RuntimeError(f"no notification finished in {STALLED_AFTER:g} s ({done:,} of {n:,} done)")
        if elapsed >= next_sample or done >= n:
            series.append(_sample(bench, fleet.pids[0], elapsed, done))
            next_sample += SAMPLE_EVERY
        if done >= n:
            return series
        if elapsed >= next_log:
            bench.log(f"  ... switchboard_soak: {done:,} of {n:,} notifications, RSS {series[-1]['worker_mib']} MiB")
            next_log += LOG_EVERY
        size = min(SOAK_BATCH, n - published, SOAK_BACKLOG - (published - done))
        if size > 0:
            for seq in range(published, published + size):
                publish(bus, MIXED, seq)
            published += size
        else:
            time.sleep(0.005)  # the backlog is full (or all is published): pacing, while the worker sends


def _sample(bench: Bench, pid: int, elapsed: float, done: int) -> dict[str, Any]:
    return {
        "t": round(elapsed, 2),
        "notifications": done,
        "worker_mib": round(rss_bytes(pid) / MIB, 2),
        "worker_peak_mib": round(peak_rss_bytes(pid) / MIB, 2),
        "server_mib": round(rss_bytes(bench.server_pid) / MIB, 2),
        "used_memory_mib": round(bench.used_memory() / MIB, 2),
    }


def _report(bench: Bench, series: list[dict[str, Any]], n: int, latency: float) -> None:
    report = bench.report
    idle, warm, end = series[0], next(s for s in series if s["notifications"] >= n // 10), series[-1]
    peak = end["worker_peak_mib"]
    # Medians of a tenth of the run each, so a passing peak (a burst of sends) is not read as growth.
    early, late = _median_rss(series, n // 10, n // 5), _median_rss(series, n - n // 10, n)
    tenths = [_median_rss(series, n * k // 10, n * (k + 1) // 10) for k in range(10)]
    used = end["used_memory_mib"] - idle["used_memory_mib"]
    rate = n / end["t"]
    at = f" @{latency * 1000:g} ms" if latency else ""
    report.add(GROUP, f"mixed{at}, 1 proc, {n:,} notifications: throughput", rate, "msg/s", target=">= 400/s")
    report.add(GROUP, "switchboard RSS after 10%", warm["worker_mib"], "MiB", higher_is_better=False)
    report.add(
        GROUP, "switchboard RSS at end", end["worker_mib"], "MiB", higher_is_better=False, target="<= 150 MiB, flat"
    )
    report.add(GROUP, "switchboard RSS peak (VmHWM)", peak, "MiB", higher_is_better=False, target="<= 150 MiB")
    report.add(
        GROUP,
        "switchboard RSS growth, median 10-20% -> 90-100%",
        late - early,
        "MiB",
        higher_is_better=False,
        details={"tenth_medians_mib": tenths},
        target="flat",
    )
    report.add(GROUP, "Redis RSS at end", end["server_mib"], "MiB", higher_is_better=False)
    report.add(GROUP, "Redis used_memory growth (the records kept)", used, "MiB", higher_is_better=False)
    step = max(1, len(series) // 300)
    report.extra["switchboard_soak_series"] = series[::step] + ([end] if series[::step][-1] is not end else [])
    bench.log(
        f"switchboard_soak: {rate:,.0f}/s; RSS {warm['worker_mib']} MiB at 10% -> {end['worker_mib']} at end, "
        f"peak {peak}; medians {early} -> {late}; Redis used_memory +{used:,.0f} MiB"
    )
    report.note(
        f"switchboard_soak: {n:,} notifications (email, SMS, push in turn) published while one switchboard worker "
        f"process sends them ({CONCURRENCY} in flight, default settings; backlog kept under {SOAK_BACKLOG:,}), the "
        f"emulators answering after {latency * 1000:g} ms in their own process; worker RSS {warm['worker_mib']} MiB "
        f"at 10% -> {end['worker_mib']} MiB at end, peak {peak} MiB; medians {early} MiB over 10-20% of the "
        f"notifications -> {late} MiB over the last 10%; the target is at 400/s: a slower process is measured at "
        "the rate it reaches"
    )
    report.note(
        f"switchboard_soak, how to read it: the end and the peak are single readings (a burst of sends passes); "
        f"the growth is the difference of two medians; the median of each tenth of the run, {tenths} MiB, tells "
        "a process settling (allocator arenas, caches filling: steps that stop) from a leak (a rise that goes on)"
    )
    report.note(
        f"switchboard_soak: Redis used_memory {idle['used_memory_mib']} -> {end['used_memory_mib']} MiB "
        f"({used * MIB / n:,.0f} bytes per notification): the delivery records and their index, kept for "
        "delivery_retention_days; that is the server growing with the records, not the process"
    )


def _median_rss(series: list[dict[str, Any]], low: int, high: int) -> float:
    """The worker's median RSS over the samples taken between ``low`` and ``high`` notifications."""
    window: list[float] = [s["worker_mib"] for s in series if low <= s["notifications"] <= high]
    return round(statistics.median(window or [float(series[-1]["worker_mib"])]), 2)
