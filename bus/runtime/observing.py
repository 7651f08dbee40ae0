"""Tracing and latency of rides, as the worker's outermost middleware.

Each ride is traced (sampled by ``bus_id``; retries and failures always) and, when it
succeeds, its publish-to-handler latency is counted per subscription. What it records goes
into the batch's :class:`Observations`, written with a later round trip.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from bus.pipeline.rider import Middleware, Ride, scoped_middleware
from bus.runtime.grace import GraceExpired
from bus.runtime.observations import Observations
from bus.runtime.retries import RetryScheduled
from bus.settings import ObserveSettings
from bus.stores.metrics import bucket_of, publish_ms
from bus.stores.traces import ride_entry, traced


class RideObserver:
    """What one worker records of its rides."""

    def __init__(self, settings: ObserveSettings, *, clock: Callable[[], float], worker_id: str) -> None:
        self.settings = settings
        self.clock = clock
        self.worker_id = worker_id

    def middleware(self, observed: Observations) -> Middleware:
        """The middleware for rides whose observations go into ``observed``."""
        return scoped_middleware(functools.partial(self._observing, observed))[0]

    def async_middleware(self, observed: Observations) -> Middleware:
        """:meth:`middleware` for async rides."""
        return scoped_middleware(functools.partial(self._observing, observed))[1]

    @contextmanager
    def _observing(self, observed: Observations, ride: Ride) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        except BaseException as exc:
            self._ended_badly(observed, ride, started, exc)
            raise
        self.record(observed, ride.attributes, ride.queue, ride.attempt, "succeeded", started)

    def _ended_badly(self, observed: Observations, ride: Ride, started: float, exc: BaseException) -> None:
        if isinstance(exc, RetryScheduled):
            self.record(observed, ride.attributes, ride.queue, ride.attempt, "retried", started, exc.error, exc.delay)
        elif not isinstance(exc, GraceExpired):
            self.record(observed, ride.attributes, ride.queue, ride.attempt, "failed", started, exc)

    def record(
        self,
        observed: Observations,
        attributes: Mapping[str, Any],
        queue: str,
        attempt: int,
        outcome: str,
        started: float,
        error: BaseException | None = None,
        retry_in: float | None = None,
    ) -> None:
        """Trace one ride and count its publish-to-handler latency (successful rides only)."""
        settings = self.settings
        if settings.metrics and outcome == "succeeded":
            published = publish_ms(attributes)
            if published is not None:
                # Against the publisher host's clock, as bus_published_at is.
                waited = time.time() * 1000 - published
                key = (str(attributes.get("bus_rider_app_key")), str(attributes.get("bus_rider_sub_key")))
                observed.latencies[(*key, bucket_of(waited))] += 1
                observed.latency_sums[key] = observed.latency_sums.get(key, 0.0) + waited
        bus_id = attributes.get("bus_id")
        problem = outcome != "succeeded" and settings.tracing  # retries and failures: always traced
        if isinstance(bus_id, str) and (problem or traced(settings, bus_id)):
            entry = ride_entry(
                attributes,
                queue=queue,
                outcome=outcome,
                attempt=attempt,
                at_ms=int(self.clock() * 1000),  # the server's clock, as the driven step's
                duration_ms=(time.perf_counter() - started) * 1000,
                worker=self.worker_id,
                error=f"{type(error).__name__}: {error}" if error is not None else None,
                retry_in=retry_in,
            )
            observed.trace(bus_id, entry)
