"""``tracing``: the e2e drain with tracing and metrics on (the default), every event traced,
tracing off, and both off; and what traces cost in Redis memory.

The four settings take turns within each repeat, so a change of load on the shared machine
hits them alike. After each drain the server's ``used_memory`` is compared with an empty
server's, and a sample of ``bus:trace:*`` keys is measured with ``MEMORY USAGE``.
"""

from __future__ import annotations

from typing import Any

from bench import systems
from bench.drain import drain_once
from bench.harness import Bench
from bus.keys import Keys
from bus.settings import BusSettings, ObserveSettings

PROCESSES = 2
SAMPLE = 200
SETTINGS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("tracing + metrics on (default)", {"tracing": True, "metrics": True}),
    ("every event traced (trace_sample 1.0)", {"tracing": True, "metrics": True, "trace_sample": 1.0}),
    ("tracing off, metrics on", {"tracing": False, "metrics": True}),
    ("tracing + metrics off", {"tracing": False, "metrics": False}),
)
DEFAULT, EVERY_EVENT, METRICS_ONLY, NONE = (label for label, _ in SETTINGS)

_PER_MILLION = "traces per million events at the default trace_sample"


def _name(label: str) -> str:
    return f"bus, {PROCESSES} procs, combined: {label}"


def run(bench: Bench) -> None:
    options, report = bench.options, bench.report
    empty = _empty_server_memory(bench)
    for rep in range(options.repeat):
        for label, flags in SETTINGS:
            drain = drain_once(bench, "bus", "combined", PROCESSES, options.events, **flags)
            storage = _storage(bench, drain.events, empty)
            report.add("tracing", _name(label), drain.rate, "ev/s", details={**drain.details(), **storage})
            report.add("tracing", f"workers' CPU per event: {label}", drain.worker_us_per_event, "us")
            report.add("tracing", f"Redis CPU per event: {label}", 1e6 * drain.server_cpu / drain.events, "us")
            if flags["tracing"]:
                report.add("tracing", "trace size per traced event (MEMORY USAGE)", storage["trace_bytes"], "B")
                report.add("tracing", _PER_MILLION, storage["trace_mb_per_million"], "MB")
            report.add(
                "tracing", f"Redis memory growth per event: {label}", storage["used_memory_bytes_per_event"], "B"
            )
            bench.log(
                f"tracing {rep + 1}/{options.repeat}: {label}: {drain.rate:,.0f} ev/s (CPU: workers "
                f"{drain.worker_cpu_pct:.0f}% = {drain.worker_us_per_event:.0f} us/event, "
                f"redis {drain.server_cpu_pct:.0f}%, others {drain.others_pct:.0f}%); "
                f"Redis memory +{storage['used_memory_bytes_per_event']:,.0f} B/event"
            )
    _compare(bench)
    _notes(bench)


def _compare(bench: Bench) -> None:
    report = bench.report
    metrics = {label: report.metrics[f"tracing/{_name(label)}"] for label, _ in SETTINGS}
    metrics[DEFAULT].target = ">= 0.8x both off"
    report.compare(metrics[DEFAULT], metrics[NONE], "both off")
    report.compare(metrics[EVERY_EVENT], metrics[NONE], "both off")
    report.compare(metrics[DEFAULT], metrics[METRICS_ONLY], "tracing off")
    report.compare(metrics[METRICS_ONLY], metrics[NONE], "both off")
    for name in ("trace size per traced event (MEMORY USAGE)", _PER_MILLION):
        report.metrics[f"tracing/{name}"].higher_is_better = False
    for label, _ in SETTINGS:
        for name in ("Redis memory growth per event", "workers' CPU per event", "Redis CPU per event"):
            report.metrics[f"tracing/{name}: {label}"].higher_is_better = False
    for name in ("workers' CPU per event", "Redis CPU per event"):
        report.compare(
            report.metrics[f"tracing/{name}: {DEFAULT}"], report.metrics[f"tracing/{name}: {NONE}"], "both off"
        )
        for label in (EVERY_EVENT, METRICS_ONLY):
            report.compare(
                report.metrics[f"tracing/{name}: {label}"], report.metrics[f"tracing/{name}: {NONE}"], "both off"
            )


def _empty_server_memory(bench: Bench) -> int:
    """``used_memory`` of the server with only the subscriptions stored (where a drain starts)."""
    bench.flush()
    systems.get("bus").prepare(bench.url)
    return bench.used_memory()


def _storage(bench: Bench, events: int, empty: int) -> dict[str, Any]:
    """Trace hashes left by the drain: their size by MEMORY USAGE per traced event, and used_memory growth."""
    pattern = f"{Keys(BusSettings().namespace).prefix}bus:trace:*"
    keys = list(bench.redis.scan_iter(match=pattern, count=1000))
    total = sum(int(bench.redis.memory_usage(key, samples=0) or 0) for key in keys)
    traced = sum(int(bench.redis.hlen(key)) for key in keys)
    per_trace = total / traced if traced else 0.0
    sample = [v for key in keys[:SAMPLE] for v in bench.redis.hvals(key)[:10]]
    lines = [len(value.splitlines()) for value in sample]
    grown = bench.used_memory() - empty
    return {
        "trace_keys": len(keys),
        "trace_entries_per_key": round(sum(lines) / len(lines), 2) if lines else 0,
        "trace_bytes": round(per_trace, 1),
        # bytes per traced event x the default sample x 1e6 events / 1e6 bytes per MB
        "trace_mb_per_million": round(per_trace * ObserveSettings().trace_sample, 1),
        "used_memory_growth_bytes": grown,
        "used_memory_bytes_per_event": round(grown / events, 1),
    }


def _notes(bench: Bench) -> None:
    report = bench.report
    ttl, sample = ObserveSettings().trace_ttl, ObserveSettings().trace_sample
    size = report.metrics["tracing/trace size per traced event (MEMORY USAGE)"].median
    rate = report.metrics[f"tracing/{_name(DEFAULT)}"].median
    details = report.metrics[f"tracing/{_name(DEFAULT)}"].details
    entries = details[0].get("trace_entries_per_key", 0) if details else 0
    report.note(
        f"tracing: each traced event is a field of {entries:g} JSON lines (driven + 3 rides) in a hash per minute "
        f"and shard, {size:,.0f} B by MEMORY USAGE; at trace_sample = {sample:g} (retries and failures always "
        f"traced) that is {size * sample:,.0f} MB per million events, and with trace_ttl = {ttl:g} s a steady "
        f"{rate:,.0f} ev/s holds about {rate * ttl * size * sample / 1e9:,.2f} GB of traces"
    )
    report.note(
        "tracing: 'Redis memory growth per event' is used_memory after the drain minus an empty server's, per "
        "event (traces, metrics and counters left behind; the queues are empty again)"
    )
