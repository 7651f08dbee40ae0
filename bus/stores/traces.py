"""Tracing: each event's path through the bus, written by workers with their batch outcomes.

A traced event gets a field in ``bus:trace:<minute>:<shard>`` (a hash per minute of
publication, expiring ``trace_ttl`` after its first step): one JSON line when a driver fans
it out (when and by which host it was published, to which apps and queues), one per ride
(succeeded, retried or failed, with its duration). The writes travel in the same round
trip as the acks, so tracing costs no extra one.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from bus.backend.connection import as_text
from bus.keys import Keys
from bus.pipeline.subscription import Subscription
from bus.safejson import read_json
from bus.settings import ObserveSettings
from bus.telemetry.otel import trace_id_of


def traced(settings: ObserveSettings, bus_id: str) -> bool:
    """Whether this event is traced: the same answer on every worker, for every step."""
    if not settings.tracing or not bus_id:
        return False
    if settings.trace_sample >= 1:
        return True
    return zlib.crc32(bus_id.encode()) % 10_000 < settings.trace_sample * 10_000


def driven_entry(event: dict[str, Any], subs: list[Subscription], *, at_ms: int, worker: str) -> bytes:
    entry: dict[str, Any] = {
        "step": "driven",
        "at": at_ms,
        "worker": worker,
        "type": event.get("bus_event_type"),
        "published_at": event.get("bus_published_at"),
        "host": event.get("bus_app_hostname"),
        "to": [{"app": s.app_key, "sub": s.key, "queue": s.queue_name} for s in subs],
    }
    for extra in ("bus_published_at_ms", "bus_delayed_until", "bus_context"):
        if event.get(extra) is not None:
            entry[extra.removeprefix("bus_")] = event[extra]
    trace_id = trace_id_of(event)
    if trace_id is not None:
        entry["trace_id"] = trace_id  # the OpenTelemetry trace it belongs to
    return orjson.dumps(entry)


def ride_entry(
    attributes: Mapping[str, Any],
    *,
    queue: str,
    outcome: str,
    attempt: int,
    at_ms: int,
    duration_ms: float,
    worker: str,
    error: str | None = None,
    retry_in: float | None = None,
) -> bytes:
    entry: dict[str, Any] = {
        "step": "ride",
        "at": at_ms,
        "worker": worker,
        "app": attributes.get("bus_rider_app_key"),
        "sub": attributes.get("bus_rider_sub_key"),
        "queue": queue,
        "outcome": outcome,
        "attempt": attempt,
        "us": int(duration_ms * 1000),
    }
    if error:
        entry["error"] = error[:500]
    if retry_in is not None:
        entry["retry_in"] = retry_in
    return orjson.dumps(entry)


_ORDER = {"published": 0, "driven": 1, "ride": 2}  # for steps in the same millisecond


@dataclass(frozen=True, slots=True)
class Step:
    at: float
    data: dict[str, Any]

    def describe(self) -> str:
        d = self.data
        if d.get("step") == "published":
            trace_id = d.get("trace_id")
            return f"published by {d.get('host') or '?'}" + (f" (OpenTelemetry trace {trace_id})" if trace_id else "")
        if d.get("step") == "driven":
            to = d["to"] if isinstance(d.get("to"), list) else []
            targets = ", ".join(f"{t.get('app')}/{t.get('sub')} -> {t.get('queue')}" for t in to if isinstance(t, dict))
            return f"driven by {d.get('worker')}: to {targets or 'nobody'}"
        text = f"{d.get('app')}/{d.get('sub')} on {d.get('queue')}: {d.get('outcome')} in {duration_ms(d):.3f} ms"
        if d.get("attempt"):
            text += f" (retry {d['attempt']})"
        if d.get("error"):
            text += f" - {d['error']}"
        if isinstance(d.get("retry_in"), int | float):
            text += f"; next try in {d['retry_in']:.3g}s"
        return text


def _number(value: Any) -> float:
    """A time a worker wrote, or 0 for what another client wrote in its place."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0.0
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) else 0.0


def duration_ms(entry: dict[str, Any]) -> float:
    """A ride's duration (stored in microseconds; older entries had milliseconds)."""
    if isinstance(entry.get("us"), int | float):
        return float(entry["us"]) / 1000
    return float(entry["ms"]) if isinstance(entry.get("ms"), int | float) else 0.0


def read_trace(redis: Any, keys: Keys, bus_id: str) -> list[Step]:
    """The event's steps in time order, starting with its publication (from the driven entry)."""
    steps: list[Step] = []
    text = redis.hget(keys.trace(bus_id), bus_id) or b""
    for raw in text.splitlines():
        try:
            data = read_json(raw)
        except ValueError:
            data = {"step": "unreadable", "raw": as_text(raw)}
        if not isinstance(data, dict):
            continue
        steps.append(Step(_number(data.get("at")) / 1000, data))
        if data.get("step") == "driven":
            published = _number(data.get("published_at_ms"))
            when = published / 1000 if published else _number(data.get("published_at"))
            published_step = {"step": "published", "host": data.get("host"), "at": when * 1000}
            if isinstance(data.get("trace_id"), str):
                published_step["trace_id"] = data["trace_id"]
            steps.append(Step(when, published_step))
    return sorted(steps, key=lambda s: (s.at, _ORDER.get(str(s.data.get("step")), len(_ORDER))))


def why_untraced(settings: ObserveSettings, bus_id: str) -> str:
    """Why an event has no trace, as far as the settings can tell."""
    if not settings.tracing:
        return "tracing is off ([bus.observe] tracing)"
    if not traced(settings, bus_id):
        return f"it is outside the trace sample ([bus.observe] trace_sample = {settings.trace_sample:g})"
    return (
        f"its trace expired ([bus.observe] trace_ttl = {settings.trace_ttl:g} s), it has not been driven yet, "
        f"its steps are not written yet (workers write them every {settings.flush_interval:g} s), or it is unknown"
    )


def gap_in(steps: list[Step], settings: ObserveSettings, bus_id: str) -> str | None:
    """Why a trace has rides but no publication or fan-out; None when it has them."""
    if not steps or any(s.data.get("step") == "driven" for s in steps):
        return None
    if not settings.tracing:
        return "tracing is off ([bus.observe] tracing): only what other processes recorded is shown"
    if not traced(settings, bus_id):
        return (
            f"outside the trace sample ([bus.observe] trace_sample = {settings.trace_sample:g}): only its retries "
            "and failures were recorded"
        )
    return (
        "its publication and fan-out are not recorded: not written yet (the driver writes them every "
        f"{settings.flush_interval:g} s), driven with tracing off, or by a worker killed before it wrote them"
    )


def timeline(steps: list[Step]) -> str:
    """Readable lines: time, offset from publication, what happened."""
    if not steps:
        return ""
    start = steps[0].at
    lines = []
    for step in steps:
        stamp = datetime.fromtimestamp(step.at, UTC).strftime("%H:%M:%S.%f")[:-3]
        lines.append(f"{stamp}  +{(step.at - start) * 1000:9.1f} ms  {step.describe()}")
    return "\n".join(lines)
