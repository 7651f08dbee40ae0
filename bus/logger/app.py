"""The logger as a bus app: one subscription to every event, written with the job's ack."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from bus.core import Bus
from bus.errors import RetryLater
from bus.logger.filtering import EventFilter
from bus.logger.settings import LoggerSettings
from bus.logger.shipper import Shipper, group_lag
from bus.logger.sinks import ElasticsearchSink, FileSink, Sink
from bus.logger.stream import EventLog
from bus.pipeline.matcher import KEY
from bus.pipeline.rider import current_ride
from bus.pipeline.subscription import Retry
from bus.runtime.worker import Worker

log = logging.getLogger("bus.logger")

# What the driver and rider add to an event: the log keeps the event as it was published.
DELIVERY_METADATA = (
    "bus_driven_at",
    "bus_rider_queue",
    "bus_rider_app_key",
    "bus_rider_sub_key",
    "bus_rider_class_name",
    "bus_executed_at",
    "bus_class_proxy",
)
# The logger waits out a lagging sink for as long as it takes: events queue on the bus meanwhile.
PATIENT = Retry(max_retries=1_000_000, base_delay=1.0, max_delay=30.0)


class LoggerApp:
    """Subscribes to every event, appends it (filtered, redacted) to the event log, ships it to sinks."""

    def __init__(self, bus: Bus, settings: LoggerSettings) -> None:
        self.bus = bus
        self.settings = settings
        self.filter = EventFilter(include=settings.include, exclude=settings.exclude, redact=settings.redact)
        self.event_log = EventLog(bus.redis, bus.keys, max_length=settings.stream_length)
        self.dispatch = bus.dispatch(settings.app_key)
        self.dispatch.add("all_events", self.handle, matcher={"bus_event_type": KEY}, retry=PATIENT)
        self.sinks: list[Sink] = []
        if "file" in settings.sinks:
            self.sinks.append(FileSink(settings.file))
        if "elasticsearch" in settings.sinks:
            self.sinks.append(ElasticsearchSink(settings.elasticsearch))
        self.shippers = [Shipper(bus.redis, bus.keys, sink) for sink in self.sinks]
        self._lag_checked = float("-inf")
        self._lag = 0
        self._logged_since_check = 0

    def handle(self, attributes: dict[str, Any]) -> None:
        event_type = str(attributes.get("bus_event_type") or "")
        if not self.filter.wanted(event_type):
            return
        if self.shippers and self._sinks_lagging():
            raise RetryLater("a sink is behind: waiting before logging more", 1.0)
        event = {k: v for k, v in attributes.items() if k not in DELIVERY_METADATA}
        redacted = self.filter.redact(event)
        current_ride().on_ack(lambda pipe: self.event_log.append(pipe, redacted))
        self._logged_since_check += 1

    def _sinks_lagging(self) -> bool:
        """Would logging one more event put a shipper past the backpressure mark?

        The shippers' lag is measured once a second; in between, every event logged counts
        as not shipped yet, so a burst past the mark pauses until the next measurement.
        """
        limit = self.settings.backpressure * self.settings.stream_length
        stale = time.monotonic() - self._lag_checked >= 1.0
        if stale:
            self._lag = max(group_lag(self.bus.redis, self.bus.keys, s.group) for s in self.shippers)
            self._logged_since_check = 0
            self._lag_checked = time.monotonic()
        lagging = self._lag + self._logged_since_check >= limit
        if lagging and stale:
            log.warning("logger backpressure: a sink lags %d events (limit %d)", self._lag, int(limit))
        return lagging

    def run(self, *, burst: bool = False, concurrency: int | None = None) -> int:
        """Subscribe, start the shippers and ride the logger's queue until stopped."""
        return self.ride(self.worker(burst=burst, concurrency=concurrency), burst=burst)

    def worker(self, *, burst: bool = False, concurrency: int | None = None) -> Worker:
        """The logger's subscriptions stored, and a worker for its queue."""
        self.bus.subscribe_all([self.settings.app_key])
        return self.bus.worker(self.dispatch.queues, burst=burst, concurrency=concurrency)

    def ride(self, worker: Worker, *, burst: bool = False) -> int:
        """Run ``worker`` with the shippers beside it; in burst mode, ship everything before returning."""
        stop = threading.Event()
        threads = [
            threading.Thread(target=s.run, args=(stop,), name=f"ship-{s.group}", daemon=True) for s in self.shippers
        ]
        for thread in threads:
            thread.start()
        try:
            return worker.run()
        finally:
            if burst:
                self.drain_shippers()
            stop.set()
            for thread in threads:
                thread.join(timeout=5)

    def drain_shippers(self) -> None:
        """Ship everything already logged (burst mode, tests)."""
        stop = threading.Event()
        for shipper in self.shippers:
            shipper.ensure_group()
            shipper.ship_pending(stop)
            while shipper.ship_once(stop):
                pass
