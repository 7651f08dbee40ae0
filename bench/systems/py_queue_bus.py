"""py-queue-bus on the benchmark's workload, a peer: a queue-bus port whose Rider drives and
rides. Imported dynamically (the ``bench`` extra is optional)."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from bench.systems.base import ChildSpec, Stop
from bench.workload import APPS, EVENT_TYPE, SUB_KEY, Handler, app_queue


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
