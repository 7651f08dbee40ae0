"""The :class:`Bus`: one object an app builds where it is wired, and passes around."""

from __future__ import annotations

import asyncio
import functools
import json
import socket
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, TypeVar, cast

from bus import context
from bus.backend.clock import Clock, ServerClock
from bus.backend.connection import awith_retries, connect, connect_async, is_cluster, with_retries
from bus.backend.embedded import EmbeddedServer
from bus.backend.replication import ReplicaWait
from bus.backend.round_trips import RoundTrips
from bus.context import LocalMode, current_local_mode, parse_local_mode
from bus.errors import ConfigurationError, InvalidEvent, UnknownSubscription
from bus.keys import Keys
from bus.pipeline.dispatch import Dispatch
from bus.pipeline.driver import driven_attributes, matching
from bus.pipeline.envelope import DRIVER_PROXY, dumps, encode_attributes, encode_job
from bus.pipeline.publisher import BeforePublish, Event, Publisher
from bus.pipeline.rider import Middleware, ride, start_ride
from bus.pipeline.subscription import Subscription, app_key_of
from bus.runtime.runner import JobRunner
from bus.runtime.worker import Worker
from bus.scheduling.heartbeat import Heartbeat
from bus.scheduling.scheduler import Scheduler
from bus.settings import BusSettings, load_settings
from bus.stores.delayed import Delayed, delayed_event, delayed_job, epoch_of
from bus.stores.failures import Failures
from bus.stores.queues import Queues
from bus.stores.registry import Registry
from bus.telemetry.otel import Tracer

PartT = TypeVar("PartT")


class Bus:
    """Publish events, declare subscriptions, and build workers, on one Redis.

    ``Bus("redis://host:6379/0")`` uses that server; ``Bus()`` resolves its settings on
    first use (``settings.toml``, ``BUS_*`` environment, else the embedded server).
    Nothing connects until the first call that needs Redis.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        namespace: str | None = None,
        settings: BusSettings | None = None,
        connection: Any = None,
        local_mode: str | LocalMode | None = None,
        hostname: str | None = None,
        clock: Clock | None = None,
        tracer_provider: Any = None,
    ) -> None:
        self._settings = settings
        self._explicit = {"redis_url": redis_url, "namespace": namespace, "hostname": hostname}
        self._local_mode = parse_local_mode(local_mode)
        self._connection = connection
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self._round_trips: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, RoundTrips] = (
            weakref.WeakKeyDictionary()
        )
        self._clock = clock
        self._tracer_provider = tracer_provider
        self._url: str | None = None
        self._lock = threading.Lock()
        self._parts: dict[str, Any] = {}
        self._dispatches: dict[str, Dispatch] = {}
        self._hooks: list[BeforePublish] = []
        self.middleware: list[Middleware] = []

    # --- wiring ---------------------------------------------------------------
    @property
    def settings(self) -> BusSettings:
        if self._settings is None:
            self._settings = load_settings().with_overrides(**self._explicit)
        elif any(self._explicit.values()):
            self._settings = self._settings.with_overrides(**self._explicit)
            self._explicit = {}
        return self._settings

    @property
    def configured(self) -> bool:
        """True if this bus was given a URL, settings or a connection explicitly."""
        return bool(self._settings or self._explicit["redis_url"] or self._connection)

    def configure(self, settings: BusSettings) -> None:
        """Adopt settings from the edge (the CLI) before anything connected."""
        if self._connection is not None:
            raise ConfigurationError("cannot reconfigure a bus that is already connected")
        self._settings = settings.with_overrides(**self._explicit)
        self._explicit = {}
        self._parts.clear()

    def connect(self) -> Any:
        """Open the Redis connection, first starting the embedded server if no URL is configured.

        The first call that needs Redis does this; a command calls it at start so that a bad
        URL or an unreachable server is reported before any work begins.
        """
        with self._lock:
            if self._connection is None:
                self._url = self.settings.redis_url or EmbeddedServer(self.settings.data_dir).ensure()
                self._connection = connect(self._url)
        return self._connection

    @property
    def redis(self) -> Any:
        return self._connection if self._connection is not None else self.connect()

    @property
    def url(self) -> str | None:
        """The Redis URL in use once connected (the embedded server's when none is configured)."""
        return self._url or self.settings.redis_url

    def _part(self, name: str, build: Callable[[], PartT]) -> PartT:
        """Build a part of the wiring once (again after :meth:`configure`)."""
        part = self._parts.get(name)
        if part is None:
            part = self._parts[name] = build()
        return cast(PartT, part)

    @property
    def keys(self) -> Keys:
        return self._part("keys", lambda: Keys(self.settings.namespace))

    @property
    def hostname(self) -> str:
        return self.settings.hostname or socket.gethostname()

    @property
    def clock(self) -> Clock:
        if self._clock is None:
            self._clock = ServerClock(self.redis)
        return self._clock

    @property
    def tracer(self) -> Tracer:
        """OpenTelemetry spans, from ``tracer_provider`` or the global provider an SDK set, decided
        at first use (so configure the SDK where the app is wired, before publishing)."""
        return self._part("tracer", lambda: Tracer(self._tracer_provider))

    @property
    def publisher(self) -> Publisher:
        return self._part("publisher", self._build_publisher)

    def _build_publisher(self) -> Publisher:
        settings = self.settings
        return Publisher(
            keys=self.keys,
            hostname=self.hostname,
            clock=self._publish_clock,
            hooks=self._hooks,
            precise_time=settings.observe.precise_publish_time,
            tracer=self.tracer,
            max_event_bytes=settings.max_event_bytes,
            waits=(
                ReplicaWait(settings.publish_replicas, settings.publish_replica_timeout)
                if settings.publish_replicas
                else None
            ),
        )

    def _publish_clock(self) -> float:
        # Publishing stamps host time, as queue-bus does, and never needs Redis for it.
        return self._clock() if self._clock is not None else time.time()

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()

    # --- declaring ------------------------------------------------------------
    def dispatch(self, app_key: str) -> Dispatch:
        """The app's dispatch (created once per app key, normalised like Ruby)."""
        key = app_key_of(app_key)
        if key not in self._dispatches:
            self._dispatches[key] = Dispatch(key)
        return self._dispatches[key]

    @property
    def dispatches(self) -> Mapping[str, Dispatch]:
        """The apps this process handles, by app key (a live, read-only view)."""
        return MappingProxyType(self._dispatches)

    def before_publish(self, hook: BeforePublish) -> BeforePublish:
        """Register a function that may change every event's attributes before it is sent."""
        self._hooks.append(hook)
        return hook

    def use(self, middleware: Middleware) -> None:
        """Add a worker middleware (outermost first)."""
        self.middleware.append(middleware)

    in_context = staticmethod(context.in_context)

    def local_mode(self, mode: str | LocalMode | None) -> AbstractContextManager[None]:
        """Within the block, publish in ``mode`` (inline, standalone, suppress) or really (None)."""
        return context.local_mode(mode)

    # --- publishing -----------------------------------------------------------
    def publish(self, event_type: str, attributes: Mapping[str, Any] | None = None) -> str:
        """Publish an event; returns its ``bus_id`` once Redis has it."""
        event = self.publisher.build(event_type, attributes)
        job = self.publisher.job(event)
        mode = current_local_mode(self._local_mode or self.settings.local_mode)
        if mode is not None:
            self._publish_locally(event, mode)
        else:
            self._retrying(lambda: self.publisher.push(self.redis, [job]), "publish")
        return str(event["bus_id"])

    def publish_with(
        self, writes: Callable[[Any], None], event_type: str, attributes: Mapping[str, Any] | None = None
    ) -> str:
        """Publish an event in the same round trip as the caller's own writes.

        ``writes`` queues them on a non-transactional pipeline; the pipeline is sent (and
        sent again while Redis is unreachable) with the publish at its end. Not atomic: it
        saves a round trip, as when a record and the event announcing it go together.
        """
        event = self.publisher.build(event_type, attributes)
        mode = current_local_mode(self._local_mode or self.settings.local_mode)
        jobs = [self.publisher.job(event)] if mode is None else []

        written = False

        def send() -> None:
            nonlocal written
            along = bool(jobs) and self.publisher.can_queue(self.redis)
            if not written:
                pipe = self.redis.pipeline(transaction=False)
                writes(pipe)
                queued = self.publisher.queue(pipe, jobs, self.redis) if along else None
                replies = pipe.execute()
                written = True
                if queued is not None:
                    self.publisher.sent(queued, replies)
            if jobs and not along:
                # Waiting for replicas on a cluster: the push takes its own trip, and only
                # it is sent again when it fails (the writes went through).
                self.publisher.push(self.redis, jobs)

        self._retrying(send, "publish")
        if mode is not None:
            self._publish_locally(event, mode)
        return str(event["bus_id"])

    def publish_many(self, events: Iterable[Event]) -> list[str]:
        """Publish many events in one round trip; returns their ``bus_id``s in order."""
        built = self.publisher.build_many(events)
        jobs = [self.publisher.job(event) for event in built]
        mode = current_local_mode(self._local_mode or self.settings.local_mode)
        if mode is not None:
            for event in built:
                self._publish_locally(event, mode)
        elif jobs:
            self._retrying(lambda: self.publisher.push(self.redis, jobs), "publish_many")
        return [str(event["bus_id"]) for event in built]

    async def apublish(self, event_type: str, attributes: Mapping[str, Any] | None = None) -> str:
        """``publish`` for asyncio apps, on an asyncio Redis connection."""
        [bus_id] = await self.apublish_many([(event_type, attributes)])
        return bus_id

    async def apublish_many(self, events: Iterable[Event]) -> list[str]:
        """``publish_many`` for asyncio apps: one round trip on an asyncio connection."""
        built = self.publisher.build_many(events)
        jobs = [self.publisher.job(event) for event in built]
        mode = current_local_mode(self._local_mode or self.settings.local_mode)
        if mode is not None:
            for event in built:
                self._publish_locally(event, mode)
        elif jobs and self.publisher.waits:
            # WAIT needs the slot master's own connection, which the blocking client gives.
            await asyncio.to_thread(self._retrying, lambda: self.publisher.push(self.redis, jobs), "publish_many")
        elif jobs:
            await awith_retries(
                lambda: self.publisher.apush(self.async_redis, jobs),
                what="publish_many",
                patience=self.settings.publish_timeout,
            )
        return [str(event["bus_id"]) for event in built]

    async def apublish_with(
        self, writes: Callable[[Any], None], event_type: str, attributes: Mapping[str, Any] | None = None
    ) -> str:
        """``publish_with`` for asyncio apps: the caller's writes and the publish in one round trip
        on an asyncio connection (``writes`` queues them on its pipeline)."""
        mode = current_local_mode(self._local_mode or self.settings.local_mode)
        if mode is not None or self.publisher.waits or is_cluster(self.redis):
            # Inline handlers, WAIT on replicas, a pipeline across slots: the blocking path has them.
            return await asyncio.to_thread(self.publish_with, writes, event_type, attributes)
        event = self.publisher.build(event_type, attributes)
        job = self.publisher.job(event)
        client = self.async_redis
        round_trips = self.round_trips

        async def send() -> None:
            pipe = client.pipeline(transaction=False)
            writes(pipe)  # sent again with the publish when Redis was unreachable: not atomic either way
            queued = self.publisher.queue(pipe, [job], client)
            self.publisher.sent(queued, await round_trips.execute(pipe))

        await awith_retries(send, what="publish", patience=self.settings.publish_timeout)
        return str(event["bus_id"])

    @property
    def async_redis(self) -> Any:
        """An asyncio client for the running event loop (asyncio connections belong to the loop
        that opened them, so each loop gets its own)."""
        loop = asyncio.get_running_loop()
        client = self._async_clients.get(loop)
        if client is None:
            self.connect()
            client = self._async_clients[loop] = connect_async(self.url or "")
        return client

    @property
    def round_trips(self) -> RoundTrips:
        """The running loop's group commit: concurrent tasks' pipelines sent as one round trip
        (``await bus.round_trips.execute(pipe)`` for a non-transactional pipeline of ``async_redis``;
        on Redis Cluster each pipeline goes alone, routed by slot)."""
        loop = asyncio.get_running_loop()
        trips = self._round_trips.get(loop)
        if trips is None:
            self.connect()
            # A client of its own without a bound per reply: RoundTrips bounds each round trip.
            trips = self._round_trips[loop] = RoundTrips(connect_async(self.url or "", socket_timeout=None))
        return trips

    def publish_at(self, when: datetime | float, event_type: str, attributes: Mapping[str, Any] | None = None) -> str:
        """Publish when ``when`` (aware datetime or epoch seconds) comes; returns the ``bus_id``.

        Stored in resque-scheduler's layout; a scheduler (``bus scheduler`` or ``bus work
        --scheduler``) delivers it. A time already past publishes at once.
        """
        timestamp = epoch_of(when)
        event = self.publisher.build(event_type, attributes)
        given = dict(attributes or {})
        mode = current_local_mode(self._local_mode or self.settings.local_mode)
        if mode is not None or timestamp <= self.clock():
            event = {k: v for k, v in event.items() if k != "bus_class_proxy"}
            event.setdefault("bus_delayed_until", timestamp)
            event["bus_class_proxy"] = DRIVER_PROXY
            if mode is not None:
                self._publish_locally(event, mode)
            else:
                self._retrying(lambda: self.publisher.push(self.redis, [self.publisher.job(event)]), "publish")
            return str(event["bus_id"])
        self.publisher.encode(event)  # the size limit, before anything is written
        job = delayed_job(delayed_event(event, timestamp, given))
        self._retrying(lambda: self.delayed.schedule(timestamp, job), "publish_at")
        return str(event["bus_id"])

    def publish_in(self, delay: timedelta | float, event_type: str, attributes: Mapping[str, Any] | None = None) -> str:
        """Publish after ``delay`` (a timedelta or seconds), measured on the Redis server's clock."""
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else delay
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise InvalidEvent(f"delay must be a timedelta or seconds, got {delay!r}")
        return self.publish_at(self.clock() + seconds, event_type, attributes)

    @property
    def delayed(self) -> Delayed:
        return self._part("delayed", lambda: Delayed(self.redis, self.keys))

    def _retrying(self, call: Callable[[], Any], what: str) -> Any:
        return with_retries(call, what=what, patience=self.settings.publish_timeout)

    def _publish_locally(self, event: dict[str, Any], mode: LocalMode) -> None:
        if mode is LocalMode.SUPPRESS:
            return
        decoded = json.loads(dumps(event))
        now = int(self._publish_clock())
        for sub in matching(decoded, self.local_subscriptions()):
            driven = driven_attributes(decoded, sub, now)
            if mode is LocalMode.STANDALONE:
                job = encode_job(encode_attributes(driven))
                self._retrying(functools.partial(self._push_to, sub.queue_name, job), "publish")
            else:
                route = self._dispatches[sub.app_key].route(sub.key)
                if route is None:  # local subscriptions come from these dispatches: never
                    raise UnknownSubscription(f"no handler for {sub.app_key}/{sub.key}")
                done = ride(start_ride(route, driven, queue=sub.queue_name, attempt=0, now=now), self.middleware)
                if done.acked_writes:
                    pipe = self.redis.pipeline(transaction=not is_cluster(self.redis))
                    for write in done.acked_writes:
                        write(pipe)
                    pipe.execute()

    def _push_to(self, queue: str, job: str) -> None:
        pipe = self.redis.pipeline(transaction=False)
        pipe.sadd(self.keys.queues, queue)
        pipe.rpush(self.keys.queue(queue), job)
        pipe.execute()

    # --- subscriptions in Redis -------------------------------------------------
    @property
    def registry(self) -> Registry:
        return self._part("registry", lambda: Registry(self.redis, self.keys))

    def local_subscriptions(self) -> list[Subscription]:
        return [sub for d in self._dispatches.values() for sub in d.subscriptions]

    def subscribe_all(self, apps: Sequence[str] | None = None) -> dict[str, int]:
        """Store this process's subscriptions in Redis (what ``bus subscribe`` does)."""
        wanted = self._dispatches if apps is None else {a: self._dispatches[app_key_of(a)] for a in apps}
        return {
            key: self._retrying(functools.partial(self.registry.replace, key, d.subscriptions), "subscribe")
            for key, d in wanted.items()
        }

    def unsubscribe(self, app_key: str) -> bool:
        return self.registry.remove(app_key_of(app_key))

    def who_gets(self, event_type: str, attributes: Mapping[str, Any] | None = None) -> list[Subscription]:
        """Which stored subscriptions would receive this event: a dry run of the driver."""
        event = dict(attributes or {})
        event.setdefault("bus_event_type", event_type)
        return matching(event, self.registry.load())

    @property
    def queues(self) -> Queues:
        """The queues as lists of jobs: depth, pages of jobs, removal (the dashboard's and CLI's view)."""
        return self._part("queues", lambda: Queues(self.redis, self.keys))

    @property
    def failures(self) -> Failures:
        return self._part("failures", lambda: Failures(self.redis, self.keys))

    # --- working --------------------------------------------------------------
    def heartbeat(self, clock: Callable[[], float] | None = None) -> Heartbeat:
        """The ``heartbeat_minutes`` publisher, judging minutes by ``clock`` (default: the server's)."""
        return Heartbeat(
            self.redis, self.keys, self.publisher, clock or self.clock, environment=self.settings.environment
        )

    def scheduler(
        self, *, clock: Callable[[], float] | None = None, interval: float = 1.0, batch: int = 1000
    ) -> Scheduler:
        """A scheduler delivering this bus's delayed events (``clock`` replaces the server's, for tests)."""
        return Scheduler(
            self.redis,
            self.keys,
            self.heartbeat(clock),
            hostname=self.hostname,
            clock=clock or ServerClock(self.redis),
            server_clock=clock is None,
            interval=interval,
            batch=batch,
        )

    def worker(self, queues: Sequence[str] | None = None, **options: Any) -> Worker:
        """A worker for ``queues`` (default: every queue of this process's apps)."""

        def runner(worker_id: str, clock: Clock, subscriptions: Callable[[], list[Subscription]]) -> JobRunner:
            return JobRunner(
                dispatches=self.dispatches,
                middleware=self.middleware,
                publisher=self.publisher,
                heartbeat=self.heartbeat(clock),
                settings=self.settings,
                tracer=self.tracer,
                worker_id=worker_id,
                clock=clock,
                subscriptions=subscriptions,
            )

        return Worker(
            list(queues) if queues is not None else self.app_queues(),
            redis=self.redis,
            keys=self.keys,
            hostname=self.hostname,
            bus_settings=self.settings,
            runner=runner,
            replica_waits=self.publisher.waits,
            apps=lambda: sorted(self._dispatches),
            **options,
        )

    def app_queues(self) -> list[str]:
        return list(dict.fromkeys(q for d in self._dispatches.values() for q in d.queues))


def iter_buses(namespace: Mapping[str, Any]) -> Iterator[tuple[str, Bus]]:
    """The Bus objects bound to names in a module's namespace (for ``bus work MODULE``)."""
    for name, value in namespace.items():
        if isinstance(value, Bus):
            yield name, value
