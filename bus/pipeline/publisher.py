"""Building published events and pushing them to ``bus_incoming``."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bus.backend.connection import is_cluster
from bus.backend.replication import ReplicaWait, rpush_on_replicas
from bus.context import bus_locale, bus_timezone, current_context
from bus.errors import InvalidEvent
from bus.keys import INCOMING_QUEUE, Keys
from bus.pipeline.envelope import DRIVER_PROXY, encode_attributes, encode_job, utf8_size
from bus.telemetry.otel import Tracer

BeforePublish = Callable[[dict[str, Any]], None]
Event = tuple[str, Mapping[str, Any] | None]
# ``SADD queues bus_incoming`` is re-sent at most this often: its result never changes,
# and skipping it keeps a publish to one command and one round trip.
QUEUE_REGISTRATION_INTERVAL = 10.0


def new_bus_id(now: int) -> str:
    """``<epoch seconds>-<uuid4>`` as queue-bus makes it (a v4 UUID from 16 random bytes)."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{now}-{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


@dataclass(frozen=True, slots=True)
class Queued:
    """What :meth:`Publisher.queue` put on a pipeline."""

    registering: bool
    wait: tuple[Any, ...] | None


class Publisher:
    """Turns ``(event_type, attributes)`` into the bus hash and job JSON queue-bus writes."""

    def __init__(
        self,
        *,
        keys: Keys,
        hostname: str,
        clock: Callable[[], float],
        hooks: list[BeforePublish],
        precise_time: bool = False,
        waits: ReplicaWait | None = None,
        tracer: Tracer | None = None,
        max_event_bytes: int = 1_048_576,
    ):
        self.keys = keys
        self.max_event_bytes = max_event_bytes
        self.tracer = tracer if tracer is not None and tracer.enabled else None
        """OpenTelemetry, when an SDK records: each event gets a publish span and carries its context."""
        self.waits = waits
        """Replicas a push waits for (None: the master's acknowledgement is enough)."""
        self.precise_time = precise_time
        self.hostname = hostname
        self.clock = clock
        self.hooks = hooks
        self.incoming_key = keys.queue(INCOMING_QUEUE)
        self._registered_at = float("-inf")
        self._local = threading.local()

    def build(self, event_type: str, attributes: Mapping[str, Any] | None) -> dict[str, Any]:
        """The bus hash: metadata, then the caller's attributes over it, then hooks."""
        if not isinstance(event_type, str) or not event_type:
            raise InvalidEvent(f"event type must be a non-empty string, got {event_type!r}")
        if attributes is not None and not isinstance(attributes, Mapping):
            raise InvalidEvent(f"attributes must be a mapping, got {type(attributes).__name__}")
        moment = self.clock()
        now = int(moment)
        event: dict[str, Any] = {
            "bus_published_at": now,
            "bus_event_type": event_type,
            "bus_id": new_bus_id(now),
            "bus_app_hostname": self.hostname,
        }
        context = current_context()
        if context is not None:  # as queue-bus: no key at all without a context
            event["bus_context"] = context
        locale, tz = bus_locale.get(), bus_timezone.get()
        if locale is not None:
            event["bus_locale"] = locale
        if tz is not None:
            event["bus_timezone"] = tz
        if self.precise_time:
            event["bus_published_at_ms"] = int(moment * 1000)
        if attributes:
            for key in attributes:
                if not isinstance(key, str):
                    raise InvalidEvent(f"attribute names must be strings, got {key!r}")
            event.update(attributes)
        for hook in self.hooks:
            hook(event)
        if self.tracer is not None:
            # The span marks the event's publication; it does not time the round trip that follows.
            self.tracer.end(self.tracer.publish(event))
        event["bus_class_proxy"] = DRIVER_PROXY
        return event

    def job(self, event: dict[str, Any]) -> str:
        """The job JSON for ``event``; :class:`InvalidEvent` if it is over ``max_event_bytes``."""
        return encode_job(self.encode(event))

    def encode(self, event: dict[str, Any]) -> str:
        """The event's JSON, checked against ``max_event_bytes`` before anything is written."""
        bus_json = encode_attributes(event)
        if len(bus_json) * 4 > self.max_event_bytes:  # else it fits whatever the characters
            size = utf8_size(bus_json)
            if size > self.max_event_bytes:
                raise InvalidEvent(
                    f"{event.get('bus_event_type')} event is {size:,} bytes, over the bus's limit of "
                    f"{self.max_event_bytes:,} bytes (max_event_bytes)"
                )
        return bus_json

    def needs_registration(self) -> bool:
        return time.monotonic() - self._registered_at > QUEUE_REGISTRATION_INTERVAL

    def can_queue(self, redis: Any) -> bool:
        """Whether :meth:`queue` can put the push on a pipeline of ``redis`` (a cluster
        pipeline cannot carry the WAIT for replicas)."""
        return not (self.waits and is_cluster(redis))

    def queue(self, pipe: Any, jobs: list[str], redis: Any) -> Queued:
        """Queue the RPUSH (with the SADD when it is due, and the WAIT for replicas) on a
        caller's plain pipeline of ``redis``; hand what it returns to :meth:`sent` with the replies."""
        registering = self.needs_registration()
        if registering:
            pipe.sadd(self.keys.queues, INCOMING_QUEUE)
        pipe.rpush(self.incoming_key, *jobs)
        wait = self.waits.command(redis) if self.waits else None
        if wait is not None:
            pipe.execute_command(*wait)
        return Queued(registering, wait)

    def sent(self, queued: Queued, replies: list[Any]) -> None:
        if queued.registering:
            self.registered()
        if self.waits and queued.wait is not None:
            self.waits.check(queued.wait, replies[-1])

    def registered(self) -> None:
        self._registered_at = time.monotonic()

    def push(self, redis: Any, jobs: list[str]) -> None:
        """One round trip: RPUSH the jobs, with the queue's SADD when it is due (and the
        WAIT for replicas when they are asked for)."""
        if self.waits:
            self._push_on_replicas(redis, jobs, self.waits)
        elif self.needs_registration():
            pipe = redis.pipeline(transaction=False)
            pipe.sadd(self.keys.queues, INCOMING_QUEUE)
            pipe.rpush(self.incoming_key, *jobs)
            pipe.execute()
            self.registered()
        elif is_cluster(redis):
            redis.execute_command("RPUSH", self.incoming_key, *jobs)
        else:
            self._send(redis, "RPUSH", self.incoming_key, *jobs)

    def _push_on_replicas(self, redis: Any, jobs: list[str], waits: ReplicaWait) -> None:
        if self.can_queue(redis):
            pipe = redis.pipeline(transaction=False)
            queued = self.queue(pipe, jobs, redis)
            self.sent(queued, pipe.execute())
            return
        registering = self.needs_registration()
        if registering:
            redis.sadd(self.keys.queues, INCOMING_QUEUE)  # another slot
        rpush_on_replicas(redis, self.incoming_key, jobs, waits)
        if registering:
            self.registered()

    def _send(self, redis: Any, *command: Any) -> Any:
        """One command on this thread's own connection: the shortest path redis-py offers.

        The connection comes from the client's pool (same address, TLS and credentials) and
        stays with the thread; after any error it is dropped, and the caller's retry gets a
        fresh one (after a Sentinel failover, to the new master).
        """
        conn = getattr(self._local, "connection", None)
        if conn is None:
            conn = redis.connection_pool.get_connection()
            self._local.connection = conn
        try:
            conn.send_command(*command)
            return conn.read_response()
        except BaseException:
            self._local.connection = None
            conn.disconnect()
            raise

    async def apush(self, aredis: Any, jobs: list[str]) -> None:
        """``push`` on an asyncio client (not for waiting on replicas: see ``Bus.apublish``)."""
        if self.needs_registration():
            pipe = aredis.pipeline(transaction=False)
            pipe.sadd(self.keys.queues, INCOMING_QUEUE)
            pipe.rpush(self.incoming_key, *jobs)
            await pipe.execute()
            self.registered()
        else:
            await aredis.execute_command("RPUSH", self.incoming_key, *jobs)

    def build_many(self, events: Iterable[Event]) -> list[dict[str, Any]]:
        return [self.build(event_type, attributes) for event_type, attributes in events]
