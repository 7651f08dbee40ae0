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

from bus.backend.connection import as_text, pipe_eval
from bus.keys import Keys

BUCKETS_MS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000, 300_000)
"""Upper bounds of the latency histogram; one more bucket holds everything slower."""
MINUTE_TTL = 2 * 3600


def bucket_of(latency_ms: float) -> int:
    return bisect_left(BUCKETS_MS, latency_ms)


def bucket_bound(index: int) -> float:
    return float(BUCKETS_MS[index]) if index < len(BUCKETS_MS) else float("inf")


def publish_ms(attributes: Mapping[str, Any]) -> float | None:
    """When the event was published, as precisely as it says (ms, else whole seconds)."""
    precise = attributes.get("bus_published_at_ms")
    if isinstance(precise, int | float):
        return float(precise)
    seconds = attributes.get("bus_published_at")
    return float(seconds) * 1000 if isinstance(seconds, int | float) else None


# KEYS: minute events, events total, minute latency, latency total, latency sums. ARGV: ttl, then
# three counts (event fields, latency fields, sums) and the (field, value) pairs of each.
_WRITE = """
local ttl, n_events, n_latency, n_sums = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local a = 5
for i = 1, n_events do
  redis.call('HINCRBY', KEYS[1], ARGV[a], ARGV[a + 1])
  redis.call('HINCRBY', KEYS[2], ARGV[a], ARGV[a + 1])
  a = a + 2
end
for i = 1, n_latency do
  redis.call('HINCRBY', KEYS[3], ARGV[a], ARGV[a + 1])
  redis.call('HINCRBY', KEYS[4], ARGV[a], ARGV[a + 1])
  a = a + 2
end
for i = 1, n_sums do
  redis.call('HINCRBYFLOAT', KEYS[5], ARGV[a], ARGV[a + 1])
  a = a + 2
end
if n_events > 0 then redis.call('EXPIRE', KEYS[1], ttl) end
if n_latency > 0 then redis.call('EXPIRE', KEYS[3], ttl) end
return 1
"""


def write(
    pipe: Any,
    keys: Keys,
    minute: int,
    events: Mapping[str, int],
    latency: Mapping[tuple[str, str, int], int],
    latency_sums: Mapping[tuple[str, str], float] | None = None,
    *,
    one_script: bool = False,
) -> None:
    """Queue the commands adding one batch's counts (and latency sums, for Prometheus).

    On one server, a single script; on a cluster (the hashes sit in different slots),
    a command each.
    """
    latency_fields = {f"{a}|{s}|{b}": n for (a, s, b), n in latency.items()}
    sums = {f"{a}|{s}": round(ms, 3) for (a, s), ms in (latency_sums or {}).items()}
    if one_script:
        args: list[Any] = [MINUTE_TTL, len(events), len(latency_fields), len(sums)]
        for mapping in (events, latency_fields, sums):
            for field, value in mapping.items():
                args += [field, value]
        script_keys = [
            keys.metrics("events", minute),
            keys.metrics_total("events"),
            keys.metrics("latency", minute),
            keys.metrics_total("latency"),
            keys.metrics_total("latency_sum"),
        ]
        pipe_eval(pipe, _WRITE, script_keys, *args)
        return
    for kind, counts in (("events", dict(events)), ("latency", latency_fields)):
        if not counts:
            continue
        key, total = keys.metrics(kind, minute), keys.metrics_total(kind)
        for field, n in counts.items():
            pipe.hincrby(key, field, n)
            pipe.hincrby(total, field, n)
        pipe.expire(key, MINUTE_TTL)
    for field, total_ms in sums.items():
        pipe.hincrbyfloat(keys.metrics_total("latency_sum"), field, total_ms)


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


@dataclass(frozen=True, slots=True)
class Totals:
    """Running totals since the metrics began (never expiring: Prometheus takes rates of them)."""

    events: dict[str, int]
    """Events driven, by type."""
    latency: dict[tuple[str, str], Counter[int]]
    """Publish-to-handler latency per (app, subscription): rides per :data:`BUCKETS_MS` index."""
    latency_sum_ms: dict[tuple[str, str], float]
    """The latencies' sum per (app, subscription), in milliseconds."""


def totals(redis: Any, keys: Keys) -> Totals:
    """The running totals, for ``/metrics``."""
    events = {as_text(k): int(v) for k, v in redis.hgetall(keys.metrics_total("events")).items()}
    buckets: dict[tuple[str, str], Counter[int]] = {}
    for field, n in redis.hgetall(keys.metrics_total("latency")).items():
        app, sub, bucket = as_text(field).rsplit("|", 2)
        buckets.setdefault((app, sub), Counter())[int(bucket)] += int(n)
    sums = {as_text(k): float(v) for k, v in redis.hgetall(keys.metrics_total("latency_sum")).items()}
    return Totals(events, buckets, {(app, sub): sums.get(f"{app}|{sub}", 0.0) for app, sub in buckets})
