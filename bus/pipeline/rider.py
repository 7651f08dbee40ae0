"""Running one driven job: find its handler and call it through the middleware stack.

A handler is a plain function or an ``async def``. Async rides run on the worker's event loop
(many in flight on one thread): the bus's own middleware has async forms, an app's ``async
def`` middleware is awaited, and an app's plain middleware runs on a thread of its own whose
``call_next()`` waits for the rest of the ride on the loop, so it sees the outcome exactly as
in a sync ride.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import inspect
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
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
    """Wraps every ride: call ``call_next()`` to continue, raise to fail the job.

    An ``async def`` middleware awaits ``call_next()`` instead; either kind wraps either kind of
    handler.
    """

    def __call__(self, ride: Ride, call_next: Callable[[], Any]) -> Any: ...


def scoped_middleware(scope: Callable[[Ride], AbstractContextManager[Any]]) -> tuple[Middleware, Middleware]:
    """A plain and an ``async def`` middleware that run the rest of each ride inside ``scope(ride)``
    (which sees what it raised): one definition for the worker's own sync and async rides."""

    def plain(ride: Ride, call_next: Callable[[], Any]) -> Any:
        with scope(ride):
            return call_next()

    async def awaiting(ride: Ride, call_next: Callable[[], Awaitable[Any]]) -> Any:
        with scope(ride):
            return await call_next()

    return plain, awaiting


def is_async(call: object) -> bool:
    """Whether ``call`` is an ``async def`` (or an object whose ``__call__`` is one)."""
    dunder_call = vars(type(call)).get("__call__")
    return inspect.iscoroutinefunction(call) or inspect.iscoroutinefunction(dunder_call)


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


def start_ride(route: Route, attributes: dict[str, Any], *, queue: str, attempt: int, now: int) -> Ride:
    """The ride of one job: its handler's route, and the event plus ``bus_executed_at``."""
    sub = route.subscription
    return Ride(sub.app_key, sub.key, queue, {**attributes, "bus_executed_at": now}, attempt, route)


@contextmanager
def _riding_now(current: Ride) -> Iterator[None]:
    """``current`` is :func:`current_ride`, and publishes inherit its event's locale and timezone."""
    attributes = current.attributes
    token = _current.set(current)
    try:
        if "bus_locale" in attributes or "bus_timezone" in attributes:
            with riding(attributes):
                yield
        else:
            yield
    finally:
        _current.reset(token)


def ride(current: Ride, middleware: Sequence[Middleware]) -> Ride:
    """Call the handler through ``middleware`` (outermost first); exceptions propagate."""

    def call_handler() -> Any:
        result = current.route.handler(current.attributes)
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
        return result

    call = call_handler
    for layer in reversed(middleware):
        call = _run_async_layer(layer, current, call) if is_async(layer) else _wrap(layer, current, call)
    with _riding_now(current):
        call()
    return current


def _wrap(layer: Middleware, current: Ride, call_next: Callable[[], Any]) -> Callable[[], Any]:
    return lambda: layer(current, call_next)


def _run_async_layer(layer: Middleware, current: Ride, call_next: Callable[[], Any]) -> Callable[[], Any]:
    """An ``async def`` middleware in a sync ride: run to completion on a loop of its own."""

    async def next_async() -> Any:
        return call_next()

    return lambda: asyncio.run(layer(current, next_async))


SyncRunner = Callable[[Callable[[], Any]], Awaitable[Any]]
"""Runs a blocking call off the event loop (``asyncio.to_thread``, or an executor of the worker's)."""


async def ride_async(current: Ride, middleware: Sequence[Middleware], run_sync: SyncRunner) -> Ride:
    """:func:`ride` for an ``async def`` handler, on the running event loop; exceptions propagate."""
    loop = asyncio.get_running_loop()

    async def call_handler() -> Any:
        return await current.route.handler(current.attributes)

    call: Callable[[], Awaitable[Any]] = call_handler
    for layer in reversed(middleware):
        call = (
            _await_layer(layer, current, call)
            if is_async(layer)
            else _thread_layer(layer, current, call, loop, run_sync)
        )
    with _riding_now(current):
        await call()
    return current


def _await_layer(
    layer: Middleware, current: Ride, call_next: Callable[[], Awaitable[Any]]
) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return await layer(current, call_next)

    return call


def _thread_layer(
    layer: Middleware,
    current: Ride,
    call_next: Callable[[], Awaitable[Any]],
    loop: asyncio.AbstractEventLoop,
    run_sync: SyncRunner,
) -> Callable[[], Awaitable[Any]]:
    """A plain middleware in an async ride: on a thread, its ``call_next()`` blocking on the loop."""

    def next_blocking() -> Any:
        # The rest of the ride runs as a task in this thread's context (the ride, its span),
        # and hands back what it raised rather than raising it into the loop (SystemExit would
        # stop the loop itself).
        context = contextvars.copy_context()
        outcome: concurrent.futures.Future[tuple[bool, Any]] = concurrent.futures.Future()

        async def guarded() -> None:
            try:
                outcome.set_result((True, await call_next()))
            except BaseException as exc:  # noqa: BLE001 - re-raised on the middleware's thread
                outcome.set_result((False, exc))

        loop.call_soon_threadsafe(lambda: loop.create_task(guarded(), context=context))
        ok, value = outcome.result()
        if not ok:
            raise value
        return value

    async def call() -> Any:
        return await run_sync(lambda: layer(current, next_blocking))

    return call
