"""The benchmark workload: a ~300-byte event of 10 fields, matched by 3 subscriptions in 3 apps."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from bus import Bus, BusSettings
from bus.settings import ObserveSettings

EVENT_TYPE = "order_placed"
APPS = ("billing", "email", "audit")
FANOUT = len(APPS)
INCOMING = "bus_incoming"
INCOMING_KEY = f"resque:queue:{INCOMING}"
SUB_KEY = "on_order_placed"
_NOTE = "leave it with the neighbour at number twelve if nobody answers the door"

Handler = Callable[[dict[str, Any]], None]


def app_queue(app: str) -> str:
    return f"{app}_default"


def event(seq: int, sent_ns: int = 0) -> dict[str, Any]:
    """The user attributes of one event; ``sent_ns`` carries the publish time for latency."""
    return {
        "order_id": 1_000_000 + seq,
        "user_id": 420_000 + seq % 9973,
        "email": f"rabbit.{seq % 9973:04d}@example.com",
        "amount_cents": 1299 + seq % 5000,
        "currency": "EUR",
        "sku": f"SKU-{seq % 100_000:06d}-XL",
        "quantity": 1 + seq % 7,
        "placed_at": "2024-05-01T12:34:56Z",
        "note": _NOTE,
        "sent_ns": sent_ns,
    }


def event_bytes() -> int:
    """Size of the user attributes as compact JSON (the issue's ~300 bytes)."""
    return len(json.dumps(event(12345, 1_700_000_000_000_000_000), separators=(",", ":")))


def sample_job() -> bytes:
    """A job exactly as the bus writes it for one benchmark event: the raw loops push it."""
    bus = bench_bus("redis://127.0.0.1:1/0")
    return bus.publisher.job(bus.publisher.build(EVENT_TYPE, event(1))).encode()


def bench_bus(
    url: str,
    handler: Handler | None = None,
    observe: ObserveSettings | None = None,
    publish_replicas: int = 0,
    tracer_provider: Any = None,
) -> Bus:
    """A Bus on ``url`` (no settings file, no environment) with the three apps subscribed."""
    settings = BusSettings(redis_url=url, observe=observe or ObserveSettings(), publish_replicas=publish_replicas)
    bus = Bus(settings=settings, tracer_provider=tracer_provider)
    register_apps(bus, handler or _ignore)
    return bus


def register_apps(bus: Bus, handler: Handler) -> None:
    for app in APPS:
        bus.dispatch(app).add(SUB_KEY, handler, matcher={"bus_event_type": EVENT_TYPE})


def _ignore(attributes: dict[str, Any]) -> None:
    return None
