"""Fan-out of one incoming event: which subscriptions get it, as which rider jobs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bus.envelope import encode_attributes, encode_job
from bus.subscription import Subscription


def driven_attributes(attributes: dict[str, Any], sub: Subscription, now: int) -> dict[str, Any]:
    """The bus hash a rider gets: rider metadata first, then the event, as Ruby merges it."""
    driven = {
        "bus_driven_at": now,
        "bus_rider_queue": sub.queue_name,
        "bus_rider_app_key": sub.app_key,
        "bus_rider_sub_key": sub.key,
        "bus_rider_class_name": sub.class_name,
    }
    driven.update(attributes)
    driven["bus_class_proxy"] = sub.class_name
    return driven


def matching(attributes: dict[str, Any], subscriptions: Iterable[Subscription]) -> list[Subscription]:
    return [sub for sub in subscriptions if sub.matcher.matches(attributes)]


def drive(attributes: dict[str, Any], subscriptions: Iterable[Subscription], now: int) -> list[tuple[str, str]]:
    """(queue, job) for every subscription the event matches."""
    return [
        (sub.queue_name, encode_job(encode_attributes(driven_attributes(attributes, sub, now))))
        for sub in matching(attributes, subscriptions)
    ]
