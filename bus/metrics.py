"""Live metrics: events per type, publish-to-handler latency per subscription.

Workers count in memory per batch and add the counts to per-minute hashes (for rates and
recent quantiles, expiring) and running totals (for Prometheus) with the batch's outcome:
no extra round trip.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bus.connection import as_text
from bus.keys import Keys

BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000)
"""Upper bounds of the latency histogram; one more bucket holds everything slower."""
MINUTE_TTL = 2 * 3600


def bucket_of(latency_ms: float) -> int:
    return bisect_left(BUCKETS_MS, latency_ms)


def bucket_bound(index: int) -> float:
    return float(BUCKETS_MS[index]) if index < len(BUCKETS_MS) else float("inf")


def publish_ms(attributes: dict[str, Any]) -> float | None:
    """When the event was published, as precisely as it says (ms, else whole seconds)."""
    precise = attributes.get("bus_published_at_ms")
    if isinstance(precise, int | float):
        return float(precise)
    seconds = attributes.get("bus_published_at")
    return float(seconds) * 1000 if isinstance(seconds, int | float) else None


def write(
    pipe: Any,
    keys: Keys,
    minute: int,
    events: Counter[str],
    latency: Counter[tuple[str, str, int]],
    latency_sums: Mapping[tuple[str, str], float] | None = None,
) -> None:
    """Queue the commands adding one batch's counts (and latency sums, for Prometheus)."""
    for kind, counts in (("events", events), ("latency", {f"{a}|{s}|{b}": n for (a, s, b), n in latency.items()})):
        if not counts:
            continue
        key, total = keys.metrics(kind, minute), keys.metrics_total(kind)
        for field, n in counts.items():
            pipe.hincrby(key, field, n)
            pipe.hincrby(total, field, n)
        pipe.expire(key, MINUTE_TTL)
    for (app, sub), total_ms in (latency_sums or {}).items():
        pipe.hincrbyfloat(keys.metrics_total("latency_sum"), f"{app}|{sub}", round(total_ms, 3))


@dataclass(frozen=True, slots=True)
class LatencyStats:
    app: str
    sub: str
    count: int
    p50: float
    p95: float
    p99: float

    def to_json(self) -> dict[str, Any]:
        return {
            "app": self.app,
            "sub": self.sub,
            "count": self.count,
            "p50_ms": self.p50,
            "p95_ms": self.p95,
            "p99_ms": self.p99,
        }


def _minutes(redis: Any, keys: Keys, kind: str, now: float, minutes: int) -> list[dict[str, int]]:
    last = int(now // 60)
    pipe = redis.pipeline(transaction=False)
    for minute in range(last - minutes + 1, last + 1):
        pipe.hgetall(keys.metrics(kind, minute))
    return [{as_text(k): int(v) for k, v in reply.items()} for reply in pipe.execute()]


def event_counts(redis: Any, keys: Keys, *, now: float, minutes: int) -> dict[str, list[int]]:
    """Per event type, the count of each of the last ``minutes`` minutes (oldest first)."""
    per_minute = _minutes(redis, keys, "events", now, minutes)
    types = sorted({t for counts in per_minute for t in counts})
    return {t: [counts.get(t, 0) for counts in per_minute] for t in types}


def latency(redis: Any, keys: Keys, *, now: float, minutes: int) -> list[LatencyStats]:
    """Quantiles of publish-to-handler latency per subscription over the last ``minutes``."""
    merged: dict[tuple[str, str], Counter[int]] = {}
    for counts in _minutes(redis, keys, "latency", now, minutes):
        for field, n in counts.items():
            app, sub, bucket = field.rsplit("|", 2)
            merged.setdefault((app, sub), Counter())[int(bucket)] += n
    return [
        LatencyStats(app, sub, sum(h.values()), quantile(h, 0.5), quantile(h, 0.95), quantile(h, 0.99))
        for (app, sub), h in sorted(merged.items())
    ]


def quantile(histogram: Counter[int], q: float) -> float:
    """The upper bound of the bucket holding the q-quantile."""
    total = sum(histogram.values())
    if not total:
        return 0.0
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= q * total:
            return bucket_bound(index)
    return bucket_bound(max(histogram))


def prometheus_lines(redis: Any, keys: Keys) -> list[str]:
    """Running totals as Prometheus counters and a latency histogram per subscription."""
    events = {as_text(k): int(v) for k, v in redis.hgetall(keys.metrics_total("events")).items()}
    lines = ["# HELP bus_events_total Events driven, by type.", "# TYPE bus_events_total counter"]
    lines += [f'bus_events_total{{type="{_label(t)}"}} {n}' for t, n in sorted(events.items())]
    buckets: dict[tuple[str, str], Counter[int]] = {}
    for field, n in redis.hgetall(keys.metrics_total("latency")).items():
        app, sub, bucket = as_text(field).rsplit("|", 2)
        buckets.setdefault((app, sub), Counter())[int(bucket)] += int(n)
    lines += [
        "# HELP bus_handler_latency_ms Publish-to-handler latency per subscription.",
        "# TYPE bus_handler_latency_ms histogram",
    ]
    sums = {as_text(k): float(v) for k, v in redis.hgetall(keys.metrics_total("latency_sum")).items()}
    for (app, sub), histogram in sorted(buckets.items()):
        labels = f'app="{_label(app)}",sub="{_label(sub)}"'
        running = 0
        for index in range(len(BUCKETS_MS) + 1):
            running += histogram.get(index, 0)
            bound = "+Inf" if index == len(BUCKETS_MS) else str(BUCKETS_MS[index])
            lines.append(f'bus_handler_latency_ms_bucket{{{labels},le="{bound}"}} {running}')
        lines.append(f"bus_handler_latency_ms_sum{{{labels}}} {sums.get(f'{app}|{sub}', 0.0):.3f}")
        lines.append(f"bus_handler_latency_ms_count{{{labels}}} {running}")
    return lines


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
