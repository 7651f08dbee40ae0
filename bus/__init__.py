"""A Redis event bus, wire-compatible with Ruby resque-bus / queue-bus and node-queue-bus.

from bus import Bus, PRESENT
b = Bus("redis://localhost:6379/0")
b.publish("rating_created", {"id": 7})
profile = b.dispatch("profile")

@profile.subscribe("rating_created")
def recalc(attributes): ...
"""

from __future__ import annotations

from typing import Any

from bus.context import LocalMode, in_context, local_mode
from bus.core import Bus
from bus.errors import (
    BusError,
    ConfigurationError,
    EmbeddedServerError,
    InvalidEvent,
    InvalidSubscription,
    MalformedJob,
    PoisonJob,
    RedisRefused,
    RedisUnavailable,
    Reject,
    RetryLater,
    UnknownSubscription,
)
from bus.pipeline.dispatch import Dispatch, on
from bus.pipeline.matcher import BLANK, EMPTY, KEY, NIL, PRESENT, VALUE, Special
from bus.pipeline.rider import Middleware, Ride, current_ride
from bus.pipeline.subscription import Retry, Subscription
from bus.settings import BusSettings, WorkerSettings, load_settings

__all__ = [
    "BLANK",
    "EMPTY",
    "KEY",
    "NIL",
    "PRESENT",
    "VALUE",
    "Bus",
    "BusError",
    "BusSettings",
    "ConfigurationError",
    "Dispatch",
    "EmbeddedServerError",
    "InvalidEvent",
    "InvalidSubscription",
    "LocalMode",
    "MalformedJob",
    "Middleware",
    "PoisonJob",
    "RedisRefused",
    "RedisUnavailable",
    "Reject",
    "Retry",
    "RetryLater",
    "Ride",
    "Special",
    "Subscription",
    "UnknownSubscription",
    "WorkerSettings",
    "current_ride",
    "default_bus",
    "in_context",
    "load_settings",
    "local_mode",
    "on",
    "publish",
]

_default: Bus | None = None


def default_bus() -> Bus:
    """The process-wide default bus, configured from settings/environment on first use.

    Only the ``bus.publish(...)`` one-liner uses it; apps that wire things explicitly
    build their own :class:`Bus`.
    """
    global _default  # noqa: PLW0603 - the one documented default
    if _default is None:
        _default = Bus()
    return _default


def publish(event_type: str, attributes: dict[str, Any] | None = None) -> str:
    """Publish on the default bus; returns the event's ``bus_id``."""
    return default_bus().publish(event_type, attributes)
