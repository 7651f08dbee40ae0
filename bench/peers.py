"""The peers on the same workload: Dramatiq (Redis broker) and py-queue-bus.

Dramatiq has no subscriptions: one actor per app stands for the 3 subscriptions, and the
fan-out is done by the publisher or, as ``dramatiq-driver``, by a drive actor.
py-queue-bus is a queue-bus port: its Rider drives and rides. Both are imported
dynamically (the ``bench`` extra is optional).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from bench.systems import ChildSpec, Stop
from bench.workload import APPS, EVENT_TYPE, INCOMING, SUB_KEY, Handler, app_queue


# --- Dramatiq -------------------------------------------------------------------------
def _dramatiq_actors(url: str, handler: Handler, driver: bool) -> tuple[Any, list[Any]]:
    """A Redis broker and the actors a publisher sends to: (broker, actors).

    Without a driver the publisher sends one message to each app's actor (3 per event,
    the shape the issue's Dramatiq figures imply); with one, it sends one message to a
    ``drive`` actor on ``bus_incoming`` that sends to the three (the bus's own shape).
    """
    dramatiq = importlib.import_module("dramatiq")
    brokers = importlib.import_module("dramatiq.brokers.redis")
    broker = brokers.RedisBroker(url=url)

    def ride(attributes: dict[str, Any]) -> None:
        handler(attributes)

    riders = [
        dramatiq.actor(ride, actor_name=f"{app}_ride", queue_name=app_queue(app), broker=broker, max_retries=0)
        for app in APPS
    ]
    if not driver:
        return broker, riders

    def drive(attributes: dict[str, Any]) -> None:
        for rider in riders:
            rider.send(attributes)

    return broker, [dramatiq.actor(drive, actor_name="drive", queue_name=INCOMING, broker=broker, max_retries=0)]


class DramatiqPublisher:
    def __init__(self, url: str, driver: bool) -> None:
        self.broker, self.actors = _dramatiq_actors(url, _ignore, driver)

    def publish(self, attributes: dict[str, Any]) -> None:
        message = {"bus_event_type": EVENT_TYPE, **attributes}
        for actor in self.actors:
            actor.send(message)

    def publish_batch(self, batch: Sequence[dict[str, Any]]) -> None:
        for attributes in batch:
            self.publish(attributes)

    def close(self) -> None:
        self.broker.close()


class DramatiqService:
    def __init__(self, spec: ChildSpec, handler: Handler, driver: bool) -> None:
        dramatiq = importlib.import_module("dramatiq")
        self.broker, _ = _dramatiq_actors(spec.url, handler, driver)
        self.worker = dramatiq.Worker(self.broker, worker_threads=spec.threads)

    def run(self, stop: Stop) -> None:
        self.worker.start()
        stop.wait()
        self.worker.stop()


class DramatiqSystem:
    """Dramatiq with the publisher sending to each app's actor."""

    name = "dramatiq"
    roles = ("all",)
    driver = False

    def prepare(self, url: str) -> None:
        return None

    def publisher(self, url: str) -> DramatiqPublisher:
        return DramatiqPublisher(url, self.driver)

    def service(self, spec: ChildSpec, handler: Handler) -> DramatiqService:
        return DramatiqService(spec, handler, self.driver)


class DramatiqDriverSystem(DramatiqSystem):
    """Dramatiq with a drive actor fanning out, as the bus's driver does."""

    name = "dramatiq-driver"
    driver = True


# --- py-queue-bus ---------------------------------------------------------------------
def _connection(url: str) -> dict[str, Any]:
    return {"url": url, "namespace": "resque"}


class PyQueueBusPublisher:
    def __init__(self, url: str) -> None:
        module = importlib.import_module("py_queue_bus")
        self.bus = module.Bus(connection=_connection(url))
        self.bus.connect()

    def publish(self, attributes: dict[str, Any]) -> None:
        self.bus.publish(EVENT_TYPE, attributes)

    def publish_batch(self, batch: Sequence[dict[str, Any]]) -> None:
        for attributes in batch:
            self.publish(attributes)

    def close(self) -> None:
        self.bus.redis.close()


class PyQueueBusService:
    def __init__(self, spec: ChildSpec, handler: Handler) -> None:
        module = importlib.import_module("py_queue_bus")
        jobs: dict[str, Callable[[dict[str, Any]], None]] = {_job(app): handler for app in APPS}
        queues = [app_queue(app) for app in APPS]
        self.rider = module.Rider(connection=_connection(spec.url), jobs=jobs, queues=queues, timeout=1, to_drive=True)
        self.rider.connect()

    def run(self, stop: Stop) -> None:
        self.rider.start(blocking=False)
        stop.wait()
        self.rider.stop()


class PyQueueBusSystem:
    name = "py-queue-bus"
    roles = ("all",)

    def prepare(self, url: str) -> None:
        module = importlib.import_module("py_queue_bus")
        bus = module.Bus(connection=_connection(url))
        bus.connect()
        for app in APPS:
            bus.subscribe(app, "default", _job(app), {"bus_event_type": EVENT_TYPE})
        bus.redis.close()

    def publisher(self, url: str) -> PyQueueBusPublisher:
        return PyQueueBusPublisher(url)

    def service(self, spec: ChildSpec, handler: Handler) -> PyQueueBusService:
        return PyQueueBusService(spec, handler)


def _job(app: str) -> str:
    return f"{app}_{SUB_KEY}"


def _ignore(attributes: dict[str, Any]) -> None:
    return None
