"""Fan-out of one incoming event: which subscriptions get it, as which rider jobs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bus.pipeline.envelope import dumps, encode_attributes, encode_job
from bus.pipeline.subscription import Subscription

RIDER_METADATA = ("bus_driven_at", "bus_rider_queue", "bus_rider_app_key", "bus_rider_sub_key", "bus_rider_class_name")
_PROXY_TAIL = ',"bus_class_proxy":'


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
    return [(sub.queue_name, job) for sub, job in drive_subscriptions(attributes, subscriptions, now)]


def drive_subscriptions(
    attributes: dict[str, Any], subscriptions: Iterable[Subscription], now: int
) -> list[tuple[Subscription, str]]:
    """(subscription, rider job) for every subscription the event matches."""
    matched = matching(attributes, subscriptions)
    if not matched:
        return []
    body = _event_body(attributes)
    if body is None:  # unusual keys: build each hash the long way
        return [(sub, encode_job(encode_attributes(driven_attributes(attributes, sub, now)))) for sub in matched]
    return [(sub, encode_job(_rider_head(sub, now) + body + dumps(sub.class_name) + "}")) for sub in matched]


def _event_body(attributes: dict[str, Any]) -> str | None:
    """The event's JSON without its braces and its final ``bus_class_proxy``, encoded once.

    Ruby keeps a merged key where it was; when ``bus_class_proxy`` is the event's last key
    (as every bus writes it) and no rider key is set already, the driven hash is exactly
    rider metadata + this + the subscription's class, whatever the subscription.
    """
    if not attributes or next(reversed(attributes)) != "bus_class_proxy":
        return None
    if any(key in attributes for key in RIDER_METADATA):
        return None
    encoded = encode_attributes(attributes)
    cut = encoded.rfind(_PROXY_TAIL)
    return encoded[1:cut] + _PROXY_TAIL if cut > 0 else None


def _rider_head(sub: Subscription, now: int) -> str:
    return (
        '{"bus_driven_at":'
        + str(now)
        + ',"bus_rider_queue":'
        + dumps(sub.queue_name)
        + ',"bus_rider_app_key":'
        + dumps(sub.app_key)
        + ',"bus_rider_sub_key":'
        + dumps(sub.key)
        + ',"bus_rider_class_name":'
        + dumps(sub.class_name)
        + ","
    )
