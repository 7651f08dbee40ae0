"""The dashboard's metrics: ``/metrics`` (the Prometheus text format, or OpenMetrics when the
scraper asks for it), and the Events page's rates panel (events per type, rides per app,
latency per subscription).

Packages that add pages add their metrics with :func:`add_collector`: each scrape asks them
for a prometheus_client collector and reports it after the bus's own families."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.requests import Request

from bus.keys import Keys
from bus.stores.metrics import BUCKETS_MS, LatencyStats, Totals, event_counts, latency
from bus.stores.overview import throughput
from bus.web.snapshot import Snapshot

CollectorFactory = Callable[[Request], Collector]
"""Makes the collector of one scrape, from the request (to reach the app's state)."""

# (metric, type, help, QueueRow attribute)
PER_QUEUE = [
    ("bus_queue_pending", "gauge", "Jobs waiting in a queue.", "pending"),
    ("bus_queue_in_flight", "gauge", "Jobs reserved by workers and not yet finished.", "in_flight"),
    ("bus_queue_retrying", "gauge", "Jobs waiting to be retried.", "retrying"),
]
# (metric, type, help, counter)
TOTALS = [
    ("bus_processed_total", "counter", "Jobs processed (Resque stat:processed).", "processed"),
    ("bus_failed_total", "counter", "Jobs failed (Resque stat:failed).", "failed"),
    ("bus_failed_entries", "gauge", "Entries in the failed list.", "failed_entries"),
    ("bus_in_flight", "gauge", "Jobs in flight across all queues.", "in_flight"),
    ("bus_delayed_jobs", "gauge", "Jobs scheduled for later (absent when too many to count).", "delayed"),
    ("bus_delayed_overdue_timestamps", "gauge", "Schedule timestamps overdue by a minute.", "delayed_overdue"),
]
RATE_WINDOWS = (10, 60)
"""Minutes the rates panel can look back over."""
MAX_TYPES = 100
SPARK_WIDTH = 120
SPARK_HEIGHT = 24


def family(
    name: str, kind: str, help_text: str, labels: Sequence[str], samples: Iterable[tuple[Sequence[str], float]]
) -> Metric:
    """A counter or gauge family with its samples (label values in the order of ``labels``)."""
    made = (CounterMetricFamily if kind == "counter" else GaugeMetricFamily)(name, help_text, labels=labels)
    for values, value in samples:
        made.add_metric(values, value)
    return made


def single(name: str, kind: str, help_text: str, value: float) -> Metric:
    """A counter or gauge without labels."""
    return family(name, kind, help_text, (), [((), value)])


def exposition(accept: str, collectors: Iterable[Collector]) -> tuple[bytes, str]:
    """What ``collectors`` report, in the format ``accept`` asks for (the text format 0.0.4 unless
    it asks for OpenMetrics), and its content type; prometheus_client escapes labels and help."""
    encoder, content_type = choose_encoder(accept)
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return encoder(registry), content_type


def add_collector(app: Starlette, factory: CollectorFactory) -> None:
    """Report ``factory(request)``'s metrics on this dashboard's ``/metrics`` too."""
    app.state.metric_collectors = [*extra_collectors(app), factory]


def extra_collectors(app: Starlette) -> list[CollectorFactory]:
    return list(getattr(app.state, "metric_collectors", ()))


class BusCollector(Collector):
    """The snapshot's gauges and counters, then the running totals' event counts and latency histograms."""

    def __init__(self, snap: Snapshot, totals: Totals) -> None:
        self.snap = snap
        self.totals = totals

    def collect(self) -> Iterator[Metric]:
        snap = self.snap
        for name, kind, help_text, attr in PER_QUEUE:
            yield family(name, kind, help_text, ["queue"], (([q.name], getattr(q, attr)) for q in snap.queues))
        ages = (([q.name], round(max(0.0, snap.now - q.oldest), 3)) for q in snap.queues if q.oldest and q.pending)
        yield family(
            "bus_queue_oldest_job_age_seconds", "gauge", "Age of the job at the head of a queue.", ["queue"], ages
        )
        for name, kind, help_text, counter in TOTALS:
            value = snap.counters.get(counter)
            if value is not None:
                yield single(name, kind, help_text, value)
        alive, dead = snap.counters["workers_alive"] or 0, snap.counters["workers_dead"] or 0
        states = [(["alive"], alive), (["dead"], dead)]
        yield family("bus_workers", "gauge", "Registered workers by state.", ["state"], states)
        yield from self._observed()

    def _observed(self) -> Iterator[Metric]:
        totals = self.totals
        events = (([t], n) for t, n in sorted(totals.events.items()))
        yield family("bus_events_total", "counter", "Events driven, by type.", ["type"], events)
        histograms = HistogramMetricFamily(
            "bus_handler_latency_ms", "Publish-to-handler latency per subscription.", labels=["app", "sub"]
        )
        bounds = [*(str(b) for b in BUCKETS_MS), "+Inf"]
        for (app, sub), histogram in sorted(totals.latency.items()):
            running = 0
            buckets: list[tuple[str, float]] = []
            for index, bound in enumerate(bounds):
                running += histogram.get(index, 0)
                buckets.append((bound, running))
            histograms.add_metric([app, sub], buckets, round(totals.latency_sum_ms.get((app, sub), 0.0), 3))
        yield histograms


# --- the rates panel ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Sparkline:
    """A per-minute series as SVG polyline points, scaled to its busiest minute."""

    points: str
    peak: int
    width: int = SPARK_WIDTH
    height: int = SPARK_HEIGHT


def sparkline(counts: Sequence[int]) -> Sparkline:
    peak = max(counts, default=0)
    step = SPARK_WIDTH / max(1, len(counts) - 1)
    scale = (SPARK_HEIGHT - 2) / peak if peak else 0.0
    points = " ".join(f"{i * step:.1f},{SPARK_HEIGHT - 1 - c * scale:.1f}" for i, c in enumerate(counts))
    return Sparkline(points, peak)


@dataclass(frozen=True, slots=True)
class TypeRate:
    event_type: str
    total: int
    per_minute: float
    last_minute: int
    """The last whole minute."""
    this_minute: int
    """The minute under way (so far)."""
    spark: Sparkline


@dataclass(frozen=True, slots=True)
class AppRate:
    app: str
    processed: int
    failed: int
    per_minute: float
    last_minute: int
    spark: Sparkline
    """Processed per minute."""


@dataclass(frozen=True, slots=True)
class Rates:
    minutes: int
    types: list[TypeRate]
    more_types: int
    """Types left out of ``types`` (the quietest), beyond ``MAX_TYPES``."""
    apps: list[AppRate]
    latency: list[LatencyStats]


def window_of(params: Mapping[str, str]) -> int:
    """``?window=`` as one of :data:`RATE_WINDOWS` (the first when absent or odd)."""
    asked = params.get("window", "")
    return int(asked) if asked in {str(w) for w in RATE_WINDOWS} else RATE_WINDOWS[0]


def rates(redis: Any, keys: Keys, queue_apps: Mapping[str, str], *, now: float, minutes: int) -> Rates:
    """Counts per minute over the last ``minutes``: events by type, rides by app (``queue_apps``
    says whose each queue is), and publish-to-handler latency by subscription."""
    per_type = event_counts(redis, keys, now=now, minutes=minutes)
    ranked = sorted(per_type.items(), key=lambda item: (-sum(item[1]), item[0]))
    types = [_type_rate(t, counts, minutes) for t, counts in ranked[:MAX_TYPES]]
    per_app: dict[str, tuple[list[int], list[int]]] = {}
    for queue, counts in throughput(redis, keys, sorted(queue_apps), now=now, minutes=minutes).items():
        processed, failed = per_app.setdefault(queue_apps[queue], ([0] * minutes, [0] * minutes))
        for i, c in enumerate(counts):
            processed[i] += c.processed
            failed[i] += c.failed
    apps = [
        AppRate(app, sum(p), sum(f), round(sum(p) / minutes, 1), p[-2] if minutes > 1 else p[-1], sparkline(p))
        for app, (p, f) in sorted(per_app.items())
    ]
    stats = latency(redis, keys, now=now, minutes=minutes)
    return Rates(minutes, types, max(0, len(ranked) - MAX_TYPES), apps, stats)


def _type_rate(event_type: str, counts: list[int], minutes: int) -> TypeRate:
    total = sum(counts)
    last = counts[-2] if minutes > 1 else counts[-1]
    return TypeRate(event_type, total, round(total / minutes, 1), last, counts[-1], sparkline(counts))
