"""Running jobs: drive events, ride them, re-publish due ones; every outcome into an Outcomes.

Nothing here talks to Redis: the worker writes the outcomes (acks, fan-out, retries,
failures, traces, metrics) with its next round trip.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bus.backend.clock import Clock
from bus.errors import BusError, MalformedJob
from bus.keys import INCOMING_QUEUE
from bus.pipeline.dispatch import Dispatch, Route
from bus.pipeline.driver import drive_subscriptions
from bus.pipeline.envelope import (
    DRIVER_PROXY,
    ENVELOPE_ALLOWANCE,
    HEARTBEAT_PROXY,
    PUBLISHER_PROXY,
    WORKER_CLASS,
    Job,
    decode_job,
    dumps,
    truncated_payload,
)
from bus.pipeline.publisher import Publisher
from bus.pipeline.rider import Middleware, Ride, SyncRunner, find_route, is_async, ride, ride_async, start_ride
from bus.pipeline.routing import SubscriptionIndex
from bus.pipeline.subscription import Subscription
from bus.runtime.grace import GraceExpired
from bus.runtime.observing import RideObserver
from bus.runtime.retries import RetryScheduled, async_retry_policy, retry_policy
from bus.safejson import read_json
from bus.scheduling.heartbeat import Heartbeat
from bus.settings import BusSettings
from bus.stores.failures import failure_entry
from bus.stores.reservations import Outcomes, Reserved
from bus.stores.traces import driven_entry, traced
from bus.telemetry.otel import Tracer

log = logging.getLogger("bus.worker")


class JobRunner:
    """What a worker does with each job it reserved; never raises for a job's sake."""

    def __init__(
        self,
        *,
        dispatches: Mapping[str, Dispatch],
        middleware: Sequence[Middleware],
        publisher: Publisher,
        heartbeat: Heartbeat,
        settings: BusSettings,
        tracer: Tracer,
        worker_id: str,
        clock: Clock,
        subscriptions: Callable[[], list[Subscription]],
    ) -> None:
        self.dispatches = dispatches
        self.middleware = middleware
        """The app's own middleware (a live list: ``bus.use`` after the worker is built still counts)."""
        self.publisher = publisher
        self.heartbeat = heartbeat
        self.worker_id = worker_id
        self.clock = clock
        self.subscriptions = subscriptions
        self._index: SubscriptionIndex | None = None
        self._indexed: list[Subscription] | None = None
        self.observe = settings.observe
        self.max_event_bytes = settings.max_event_bytes
        self.otel = tracer
        self._otel = [tracer.ride_middleware()] if tracer.enabled else []
        self._async_otel = [tracer.async_ride_middleware()] if tracer.enabled else []
        self.observer = RideObserver(self.observe, clock=clock, worker_id=worker_id)
        self.retries = retry_policy(settings.retry)
        self.async_retries = async_retry_policy(settings.retry)
        self.tracer = ":".join(worker_id.split(":")[:2])  # host:pid, short: it is in every trace entry
        self.processed = 0
        self.failed = 0

    def decode(self, reserved: Reserved, out: Outcomes) -> Job | None:
        """The job, or None once a job that cannot be read (or is over the size limit) is failed."""
        limit = self.max_event_bytes
        if len(reserved.raw) > 2 * limit + ENVELOPE_ALLOWANCE:  # bigger than any escaping of a legal event
            self._fail_oversized(reserved, len(reserved.raw), out)
            return None
        try:
            job = decode_job(reserved.raw)
        except MalformedJob as exc:
            self.fail(reserved, None, exc, out)
            return None
        if job.size > limit:
            self._fail_oversized(reserved, job.size, out, job.klass)
            return None
        return job

    def _fail_oversized(self, reserved: Reserved, size: int, out: Outcomes, klass: str | None = None) -> None:
        """Failed with the reason; the entry keeps only what identifies the event, not its body."""
        error = MalformedJob(f"job is {size:,} bytes, over the bus's limit of {self.max_event_bytes:,} bytes")
        self.fail(reserved, None, error, out, payload=truncated_payload(reserved.raw, size, klass))

    def drive(self, drives: list[tuple[Reserved, Job]], out: Outcomes) -> None:
        """Fan out a batch of incoming events to their subscribers' queues."""
        if not drives:
            return
        subscriptions = self.subscriptions()
        if self._index is None or self._indexed is not subscriptions:  # the cache loaded them again
            self._index, self._indexed = SubscriptionIndex(subscriptions), subscriptions
        index = self._index
        now = self.clock()
        observe = self.observe
        for reserved, job in drives:
            span = self.otel.consume(job.attributes, reserved.queue) if self.otel.enabled else None
            try:
                if not job.attributes:
                    raise MalformedJob("No attributes passed")
                driven = drive_subscriptions(job.attributes, index.candidates(job.attributes), int(now))
                for sub, rider_job in driven:
                    out.push(sub.queue_name, rider_job)
                if observe.metrics:
                    out.observed.event_counts[str(job.attributes.get("bus_event_type"))] += 1
                bus_id = str(job.attributes.get("bus_id") or "")
                if traced(observe, bus_id):
                    subs = [sub for sub, _ in driven]
                    entry = driven_entry(job.attributes, subs, at_ms=int(now * 1000), worker=self.tracer)
                    out.observed.trace(bus_id, entry)
                self.done(reserved, out)
                self.otel.end(span)
            except Exception as exc:  # noqa: BLE001 - a bad event fails, the worker goes on
                self.otel.end(span, exc)
                self.fail(reserved, job, exc, out)

    def fail_alone(self, reserved: Reserved, job: Job, exc: BaseException) -> Outcomes:
        """The job recorded as failed, with outcomes of its own (a pool thread's last resort)."""
        out = Outcomes()
        self.fail(reserved, job, exc, out)
        return out

    def run_alone(self, reserved: Reserved, job: Job) -> Outcomes:
        """Run one job with outcomes of its own (pool threads, suspects)."""
        out = Outcomes()
        self.run(reserved, job, out)
        return out

    def run(self, reserved: Reserved, job: Job, out: Outcomes) -> None:
        """Run one job of any kind, recording its outcome in ``out``."""
        try:
            if job.klass != WORKER_CLASS:
                raise MalformedJob(f"unknown job class {job.klass!r} (expected {WORKER_CLASS})")
            if job.proxy == DRIVER_PROXY:
                self.drive([(reserved, job)], out)
            elif job.proxy == PUBLISHER_PROXY:
                self._republish(job, out)
                self.done(reserved, out)
            elif job.proxy == HEARTBEAT_PROXY:
                # A scheduled QueueBus::Heartbeat job (sidekiq-bus, node-queue-bus): publish the
                # minutes due, under the same lock and check as `bus scheduler` does.
                self.heartbeat.tick()
                self.done(reserved, out)
            else:
                self._ride(reserved, job, out)
        except Exception as exc:  # noqa: BLE001
            self.fail(reserved, job, exc, out)

    @property
    def has_async_handlers(self) -> bool:
        """Whether any handler of this process is an ``async def`` (the worker then runs an event loop)."""
        return any(is_async(route.handler) for dispatch in self.dispatches.values() for route in dispatch.routes)

    def rides_async(self, job: Job) -> bool:
        """Whether ``job`` is a ride whose handler is an ``async def`` (:meth:`run_async` takes it)."""
        if job.klass != WORKER_CLASS or job.proxy in (DRIVER_PROXY, PUBLISHER_PROXY, HEARTBEAT_PROXY):
            return False
        try:
            return is_async(find_route(job, self.dispatches).handler)
        except BusError:
            return False  # run() records why it cannot be run

    async def run_async(self, reserved: Reserved, job: Job, run_sync: SyncRunner) -> Outcomes:
        """Ride one job with an ``async def`` handler on the running loop, with outcomes of its own;
        ``run_sync`` runs the app's plain middleware off the loop."""
        out = Outcomes()
        route = find_route(job, self.dispatches)
        middleware = [
            self.observer.async_middleware(out.observed),
            *self._async_otel,
            self.async_retries,
            *self.middleware,
        ]
        try:
            done = await ride_async(self._start(route, reserved, job), middleware, run_sync)
        except BaseException as exc:  # noqa: BLE001 - handler errors (SystemExit too) are the job's outcome
            self._settle(reserved, job, exc, out)
        else:
            self._ridden(reserved, done, out)
        return out

    def _ride(self, reserved: Reserved, job: Job, out: Outcomes) -> None:
        """Find the handler and run it through the middleware: observing, OpenTelemetry, the retry
        policy, then the app's own; the outcome (done, retry, failed) goes into ``out``."""
        try:
            route = find_route(job, self.dispatches)
        except BusError as exc:
            self.fail(reserved, job, exc, out)
            self.observer.record(
                out.observed, job.attributes, reserved.queue, job.attempt, "failed", time.perf_counter(), exc
            )
            return
        middleware = [self.observer.middleware(out.observed), *self._otel, self.retries, *self.middleware]
        try:
            done = ride(self._start(route, reserved, job), middleware)
        except BaseException as exc:  # noqa: BLE001 - handler errors (SystemExit too) are the job's outcome
            self._settle(reserved, job, exc, out)
        else:
            self._ridden(reserved, done, out)

    def _start(self, route: Route, reserved: Reserved, job: Job) -> Ride:
        return start_ride(route, job.attributes, queue=reserved.queue, attempt=job.attempt, now=int(self.clock()))

    def _ridden(self, reserved: Reserved, done: Ride, out: Outcomes) -> None:
        out.acked_writes += done.acked_writes
        self.done(reserved, out)

    def _settle(self, reserved: Reserved, job: Job, exc: BaseException, out: Outcomes) -> None:
        """What a ride raised: a retry the policy scheduled, else a failure; the end of the
        shutdown grace goes on up to the worker."""
        if isinstance(exc, GraceExpired):
            raise exc
        if isinstance(exc, RetryScheduled):
            self._retry(reserved, job, exc.error, exc.delay, out)
        else:
            self.fail(reserved, job, exc, out)

    def _republish(self, job: Job, out: Outcomes) -> None:
        """A delayed event came due: publish it now, keeping its ``bus_id``."""
        publisher = self.publisher
        event = publisher.build(str(job.attributes.get("bus_event_type") or ""), job.attributes)
        out.push(INCOMING_QUEUE, publisher.job(event))

    def done(self, reserved: Reserved, out: Outcomes) -> None:
        out.finished(reserved.queue, reserved.raw)
        self.processed += 1

    def _retry(self, reserved: Reserved, job: Job, exc: BaseException, delay: float, out: Outcomes) -> None:
        envelope = read_json(reserved.raw)
        envelope["bus_attempt"] = job.attempt + 1
        out.retries.append((reserved.queue, dumps(envelope), self.clock() + delay))
        out.finished(reserved.queue, reserved.raw)
        self.processed += 1
        log.warning(
            "job on %s failed (%s: %s); retry %d in %.1fs",
            reserved.queue,
            type(exc).__name__,
            exc,
            job.attempt + 1,
            delay,
        )

    def fail(
        self,
        reserved: Reserved,
        job: Job | None,
        exc: BaseException,
        out: Outcomes,
        payload: dict[str, Any] | None = None,
    ) -> None:
        """Record the job in the failed list, in Resque's format, and release it."""
        if payload is None and job is not None:
            payload = job.payload()
        elif payload is None:
            payload = {"class": None, "args": [reserved.raw.decode("utf-8", "replace")]}
        entry = failure_entry(payload, exc, queue=reserved.queue, worker_id=self.worker_id, now=self.clock())
        out.failures.append(entry)
        out.finished(reserved.queue, reserved.raw, failed=True)
        self.processed += 1
        self.failed += 1
        log.error("job on %s failed for good: %s: %s", reserved.queue, type(exc).__name__, exc)
