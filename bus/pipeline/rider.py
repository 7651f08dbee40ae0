"""Running one driven job: find its handler and call it through the middleware stack."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

from bus.context import riding
from bus.errors import MalformedJob, UnknownSubscription
from bus.pipeline.dispatch import Dispatch, Route
from bus.pipeline.envelope import Job


@dataclass(slots=True)
class Ride:
    """What middleware (and, through :func:`current_ride`, the handler) sees of the job being run."""

    app_key: str
    sub_key: str
    queue: str
    attributes: dict[str, Any]
    attempt: int
    route: Route
    acked_writes: list[Callable[[Any], Any]] = field(default_factory=list)

    def on_ack(self, write: Callable[[Any], Any]) -> None:
        """Queue Redis writes (``write(pipeline)``) made together with this job's acknowledgement.

        On a single server they land in the same MULTI as the ack: if the job is redone after
        a crash, so are they, and never twice.
        """
        self.acked_writes.append(write)


_current: ContextVar[Ride | None] = ContextVar("bus_current_ride", default=None)


def current_ride() -> Ride:
    """The ride of the handler running now (raises outside a handler)."""
    ride = _current.get()
    if ride is None:
        raise RuntimeError("current_ride() is only available inside a bus handler")
    return ride


def ride_in_progress() -> Ride | None:
    """The ride of the handler running now, or None (for log lines that may come from anywhere)."""
    return _current.get()


class Middleware(Protocol):
    """Wraps every ride: call ``call_next()`` to continue, raise to fail the job."""

    def __call__(self, ride: Ride, call_next: Callable[[], Any]) -> Any: ...


def find_route(job: Job, dispatches: Mapping[str, Dispatch]) -> Route:
    """The route for a driven job, or the reason it cannot be run here."""
    app_key = job.attributes.get("bus_rider_app_key")
    sub_key = job.attributes.get("bus_rider_sub_key")
    if not app_key or not isinstance(app_key, str):
        raise MalformedJob("driven job has no bus_rider_app_key")
    if not sub_key or not isinstance(sub_key, str):
        raise MalformedJob("driven job has no bus_rider_sub_key")
    dispatch = dispatches.get(app_key)
    if dispatch is None:
        raise UnknownSubscription(f"app {app_key!r} is not handled by this process")
    route = dispatch.route(sub_key)
    if route is None:
        raise UnknownSubscription(f"app {app_key!r} has no subscription {sub_key!r} in this process")
    return route


def ride(
    route: Route,
    attributes: dict[str, Any],
    *,
    queue: str,
    attempt: int,
    middleware: Sequence[Middleware],
    now: int,
) -> Ride:
    """Call the handler with the event plus ``bus_executed_at``; exceptions propagate."""
    attributes = dict(attributes)
    attributes["bus_executed_at"] = now
    sub = route.subscription
    current = Ride(sub.app_key, sub.key, queue, attributes, attempt, route)

    def call_handler() -> Any:
        result = route.handler(current.attributes)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return result

    call = call_handler
    for layer in reversed(middleware):
        call = _wrap(layer, current, call)
    token = _current.set(current)
    try:
        if "bus_locale" in attributes or "bus_timezone" in attributes:
            with riding(attributes):
                call()
        else:
            call()
    finally:
        _current.reset(token)
    return current


def _wrap(layer: Middleware, current: Ride, call_next: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: layer(current, call_next)
