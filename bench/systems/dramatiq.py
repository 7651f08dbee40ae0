"""Dramatiq (Redis broker) on the benchmark's workload, a peer.

Dramatiq has no subscriptions: one actor per app stands for the 3 subscriptions, and the
fan-out is done by the publisher or, as ``dramatiq-driver``, by a drive actor. Imported
dynamically (the ``bench`` extra is optional).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import Any

from bench.systems.base import ChildSpec, Stop
from bench.workload import APPS, EVENT_TYPE, INCOMING, Handler, app_queue


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


def _ignore(attributes: dict[str, Any]) -> None:
    return None
