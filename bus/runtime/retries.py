"""The retry policy, as the worker's own middleware: a failed ride is retried later, or fails.

It wraps every ride inside the observing middleware and outside the app's own, so what an
app's middleware raises counts like what its handler raises. A decision to retry travels to
the runner as :class:`RetryScheduled`; anything else that escapes is the job's failure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from bus.errors import Reject, RetryLater
from bus.pipeline.rider import Middleware, Ride
from bus.pipeline.subscription import Retry
from bus.runtime.grace import GraceExpired


class RetryScheduled(Exception):
    """The ride failed with ``error`` and runs again after ``delay`` seconds."""

    def __init__(self, error: BaseException, delay: float) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.error = error
        self.delay = delay


def retry_policy(default: Retry) -> Middleware:
    """Retries by the subscription's :class:`Retry` (else ``default``); ``Reject`` fails at once,
    ``RetryLater`` waits at least as long as it asks."""

    def retrying(ride: Ride, call_next: Callable[[], Any]) -> Any:
        try:
            return call_next()
        except BaseException as exc:  # SystemExit too: a handler never ends the worker
            retry = _retry_of(ride, exc, default)
            if retry is None:
                raise
            raise retry from exc

    return retrying


def async_retry_policy(default: Retry) -> Middleware:
    """:func:`retry_policy` for async rides."""

    async def retrying(ride: Ride, call_next: Callable[[], Awaitable[Any]]) -> Any:
        try:
            return await call_next()
        except BaseException as exc:  # SystemExit too
            retry = _retry_of(ride, exc, default)
            if retry is None:
                raise
            raise retry from exc

    return retrying


def _retry_of(ride: Ride, exc: BaseException, default: Retry) -> RetryScheduled | None:
    """The retry for a ride that raised ``exc``, or None when it fails (or the grace period ends)."""
    if isinstance(exc, GraceExpired | Reject):
        return None
    policy = ride.route.retry or default
    if ride.attempt >= policy.max_retries:
        return None
    delay = policy.delay(ride.attempt + 1)
    if isinstance(exc, RetryLater):
        delay = max(delay, exc.delay)
    return RetryScheduled(exc, delay)
