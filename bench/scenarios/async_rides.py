"""``async_rides``: handlers that wait on a slow service (50 ms), plain on threads vs ``async def``
on the worker's event loop, at the same ``concurrency`` and at a high one.

One worker process per measurement drains a queue of events whose handler only waits: the
figure is rides per second, and the worker's CPU per ride. Plain at 8 threads is today's
default shape; async at 8 shows the loop costs no more than threads; async at 400 is what a
process keeps in flight without a thread per ride.
"""

from __future__ import annotations

import asyncio
import resource
import time
from typing import Any

from bench.harness import Bench
from bus import Bus, Retry
from bus.settings import BusSettings

WAIT = 0.05
RATE = f"rides/s (handler waits {WAIT * 1000:.0f} ms)"
SHAPES: tuple[tuple[str, bool, int], ...] = (
    ("plain handler, 8 threads", False, 8),
    ("async handler, concurrency 8", True, 8),
    ("async handler, concurrency 400", True, 400),
)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _drain(bench: Bench, is_async: bool, concurrency: int, events: int) -> tuple[float, float]:
    """(rides/s, CPU microseconds per ride) for one drain in this process."""
    bench.flush()
    bus = Bus(settings=BusSettings(redis_url=bench.url))
    try:
        app = bus.dispatch("bench_async")

        async def waits_async(attributes: dict[str, Any]) -> None:
            await asyncio.sleep(WAIT)

        def waits(attributes: dict[str, Any]) -> None:
            time.sleep(WAIT)

        app.add("wait", waits_async if is_async else waits, retry=Retry(max_retries=0))
        bus.subscribe_all()
        bus.publish_many([("wait", {"n": n}) for n in range(events)])
        bus.worker(["bus_incoming"], burst=True, install_signals=False).run()
        worker = bus.worker(["bench_async_default"], burst=True, install_signals=False, concurrency=concurrency)
        started, cpu = time.perf_counter(), _cpu()
        worker.run()
        elapsed, used = time.perf_counter() - started, _cpu() - cpu
    finally:
        bus.close()
    if worker.processed != events or worker.failed:
        raise RuntimeError(f"async_rides: {worker.processed} of {events} rides, {worker.failed} failed")
    return events / elapsed, 1e6 * used / events


def run(bench: Bench) -> None:
    options, report = bench.options, bench.report
    for rep in range(options.repeat):
        for label, is_async, concurrency in SHAPES:
            events = max(200, min(options.events, 40 * concurrency))
            rate, cpu_us = _drain(bench, is_async, concurrency, events)
            report.add("async_rides", f"{label}: {RATE}", rate, "rides/s")
            report.add("async_rides", f"{label}: worker CPU per ride", cpu_us, "us")
            bench.log(f"async_rides {rep + 1}/{options.repeat}: {label}: {rate:,.0f} rides/s, {cpu_us:.0f} us CPU/ride")
    plain = report.metrics.get(f"async_rides/{SHAPES[0][0]}: rides/s (handler waits {WAIT * 1000:.0f} ms)")
    for label, _, _ in SHAPES[1:]:
        report.compare(
            report.metrics.get(f"async_rides/{label}: rides/s (handler waits {WAIT * 1000:.0f} ms)"),
            plain,
            SHAPES[0][0],
        )
        metric = report.metrics.get(f"async_rides/{label}: worker CPU per ride")
        if metric is not None:
            metric.higher_is_better = False
    cpu = report.metrics.get(f"async_rides/{SHAPES[0][0]}: worker CPU per ride")
    if cpu is not None:
        cpu.higher_is_better = False
    report.note(f"async_rides: one worker in the bench process; each handler only waits {WAIT * 1000:.0f} ms")
