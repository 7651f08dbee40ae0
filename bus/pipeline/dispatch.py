"""An app's handlers in this process: the ``subscribe`` decorators and class subscribers."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from bus.errors import InvalidSubscription
from bus.pipeline.envelope import RIDER_PROXY
from bus.pipeline.matcher import Matcher, MatcherSpec
from bus.pipeline.subscription import Retry, Subscription, app_key_of, normalize

Handler = Callable[[dict[str, Any]], Any]
H = TypeVar("H", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

_MARKS = "__bus_subscriptions__"


@dataclass(frozen=True, slots=True)
class Route:
    """A subscription and the code that runs it."""

    subscription: Subscription
    handler: Handler
    retry: Retry | None = None


class Dispatch:
    """The subscriptions one app declares; ``Bus.dispatch(app_key)`` creates it."""

    def __init__(self, app_key: str) -> None:
        self.app_key = app_key_of(app_key)
        self._routes: dict[str, Route] = {}

    def __repr__(self) -> str:
        return f"Dispatch({self.app_key!r}, {len(self._routes)} subscriptions)"

    def subscribe(
        self,
        key: str,
        *,
        matcher: MatcherSpec | None = None,
        queue: str = "default",
        retry: Retry | None = None,
    ) -> Callable[[H], H]:
        """Decorator: run the function for events matching ``matcher``.

        Without a matcher the subscription matches ``bus_event_type == key``. Events go to
        queue ``<app>_<queue>``. The function receives the event's attributes.
        """

        def register(fn: H) -> H:
            self.add(key, fn, matcher=matcher, queue=queue, retry=retry)
            return fn

        return register

    def add(
        self,
        key: str,
        handler: Handler,
        *,
        matcher: MatcherSpec | None = None,
        queue: str = "default",
        retry: Retry | None = None,
        class_name: str = RIDER_PROXY,
    ) -> Subscription:
        """Register ``handler`` under sub key ``key`` (the non-decorator form)."""
        if not isinstance(key, str) or not key:
            raise InvalidSubscription("a subscription key must be a non-empty string")
        if key in self._routes:
            raise InvalidSubscription(f"app {self.app_key!r} already has a subscription {key!r}")
        if not callable(handler):
            raise InvalidSubscription(f"handler for {key!r} is not callable")
        if retry is not None and not isinstance(retry, Retry):
            raise InvalidSubscription("retry must be a bus.Retry")
        queue_name = self._queue_name(queue)
        compiled = Matcher.declare(matcher if matcher is not None else {"bus_event_type": key})
        sub = Subscription(self.app_key, key, queue_name, class_name, compiled)
        self._routes[key] = Route(sub, handler, retry)
        return sub

    def on_heartbeat(
        self,
        key: str,
        *,
        minute: int | None = None,
        hour: int | None = None,
        wday: int | None = None,
        minute_interval: int | None = None,
        hour_interval: int | None = None,
        queue: str = "default",
        retry: Retry | None = None,
    ) -> Callable[[H], H]:
        """Decorator: run the function on ``heartbeat_minutes`` events at the given times (UTC).

        ``minute``/``hour``/``wday`` (Sunday is 0) must equal the event's; the intervals keep
        minutes (hours) divisible by them. Filters are stored in the matcher, so the driver
        sends only the minutes that qualify.
        """
        matcher = heartbeat_matcher(minute, hour, wday, minute_interval, hour_interval)

        def register(fn: H) -> H:
            def handler(attributes: dict[str, Any]) -> Any:
                if minute_interval and int(attributes.get("minute", 0)) % minute_interval:
                    return None
                if hour_interval and int(attributes.get("hour", 0)) % hour_interval:
                    return None
                return fn(attributes)

            self.add(key, handler, matcher=matcher, queue=queue, retry=retry)
            return fn

        return register

    def subscriber(self, cls: C | None = None, *, queue: str = "default") -> Any:
        """Class decorator: every method marked with :func:`on` becomes a subscription.

        The sub key is ``ClassName.method`` and the stored class is the class name, as
        queue-bus's ``Subscriber`` mixin stores them; a fresh instance handles each event.
        """

        def register(klass: C) -> C:
            found = False
            for name, member in inspect.getmembers(klass):
                for event_type, matcher, method_queue, retry in getattr(member, _MARKS, ()):
                    found = True
                    self.add(
                        f"{klass.__name__}.{name}",
                        _bound(klass, name),
                        matcher=matcher if matcher is not None else {"bus_event_type": event_type or name},
                        queue=method_queue or queue,
                        retry=retry,
                        class_name=klass.__name__,
                    )
            if not found:
                raise InvalidSubscription(f"{klass.__name__} has no methods marked with @on(...)")
            return klass

        return register(cls) if cls is not None else register

    def route(self, sub_key: str) -> Route | None:
        return self._routes.get(sub_key)

    @property
    def routes(self) -> list[Route]:
        return list(self._routes.values())

    @property
    def subscriptions(self) -> list[Subscription]:
        return [r.subscription for r in self._routes.values()]

    @property
    def queues(self) -> list[str]:
        """This app's queue names, in declaration order."""
        return list(dict.fromkeys(r.subscription.queue_name for r in self._routes.values()))

    def _queue_name(self, queue: str) -> str:
        if not isinstance(queue, str) or not normalize(queue).strip("_"):
            raise InvalidSubscription(f"invalid queue name {queue!r}")
        return normalize(f"{self.app_key}_{queue}")


def on(
    event_type: str | None = None,
    *,
    matcher: MatcherSpec | None = None,
    queue: str | None = None,
    retry: Retry | None = None,
) -> Callable[[H], H]:
    """Mark a method of a class subscriber; the event type defaults to the method's name."""

    def mark(fn: H) -> H:
        marks = list(getattr(fn, _MARKS, ()))
        marks.append((event_type, matcher, queue, retry))
        setattr(fn, _MARKS, tuple(marks))
        return fn

    return mark


def heartbeat_matcher(
    minute: int | None, hour: int | None, wday: int | None, minute_interval: int | None, hour_interval: int | None
) -> dict[str, Any]:
    """The matcher for ``on_heartbeat``; bad values raise :class:`InvalidSubscription` now, not at 2:30."""
    matcher: dict[str, Any] = {"bus_event_type": "heartbeat_minutes"}
    for name, value, top in (("minute", minute, 59), ("hour", hour, 23), ("wday", wday, 6)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= top:
            raise InvalidSubscription(f"{name} must be an integer from 0 to {top}, got {value!r}")
        matcher[name] = value
    for name, interval, field, span in (
        ("minute_interval", minute_interval, "minute", 60),
        ("hour_interval", hour_interval, "hour", 24),
    ):
        if interval is None:
            continue
        if isinstance(interval, bool) or not isinstance(interval, int) or interval <= 0:
            raise InvalidSubscription(f"{name} must be a positive integer, got {interval!r}")
        if field not in matcher:
            values = "|".join(str(v) for v in range(0, span, interval))
            matcher[field] = re.compile(f"^(?:{values})$")
    return matcher


def _bound(klass: type, name: str) -> Handler:
    def handle(attributes: dict[str, Any]) -> Any:
        return getattr(klass(), name)(attributes)

    handle.__qualname__ = f"{klass.__qualname__}.{name}"
    return handle
