"""This repository's bus as a benchmark system: ``Bus.publish`` and ``bus`` workers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.systems.base import ChildSpec, Stop, watch
from bench.workload import APPS, EVENT_TYPE, INCOMING, Handler, app_queue, bench_bus
from bus.runtime.collector import tune_collector
from bus.settings import ObserveSettings

# A worker's queues by role. "all" is what ``bus work APP --driver`` runs: the app's
# queues first, bus_incoming last; "driver-first" puts bus_incoming first.
ROLES: dict[str, list[str]] = {
    "all": [*(app_queue(a) for a in APPS), INCOMING],
    "driver-first": [INCOMING, *(app_queue(a) for a in APPS)],
    "driver": [INCOMING],
    "riders": [app_queue(a) for a in APPS],
}


class BusPublisher:
    def __init__(self, url: str) -> None:
        self.bus = bench_bus(url)
        self.bus.redis.ping()

    def publish(self, attributes: dict[str, Any]) -> None:
        self.bus.publish(EVENT_TYPE, attributes)

    def publish_batch(self, batch: Sequence[dict[str, Any]]) -> None:
        self.bus.publish_many([(EVENT_TYPE, attributes) for attributes in batch])

    def close(self) -> None:
        self.bus.close()


class BusService:
    """One ``bus`` Worker for the role's queues, with the benchmark's handler on every app."""

    def __init__(self, spec: ChildSpec, handler: Handler) -> None:
        sample = ObserveSettings().trace_sample if spec.trace_sample is None else spec.trace_sample
        observe = ObserveSettings(tracing=spec.tracing, metrics=spec.metrics, trace_sample=sample)
        self.bus = bench_bus(spec.url, handler, observe, spec.publish_replicas, recording_provider(spec.otel_sdk))
        self.worker = self.bus.worker(
            ROLES[spec.role], install_signals=False, batch_size=spec.batch_size, concurrency=spec.concurrency
        )
        self.bus.redis.ping()

    def run(self, stop: Stop) -> None:
        watch(stop, self.worker.request_stop)
        tune_collector()  # as `bus work` and `switchboard run` do
        self.worker.run()


def recording_provider(enabled: bool) -> Any:
    """An OpenTelemetry SDK recording every span to memory (batch processor), or None."""
    if not enabled:
        return None
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(InMemorySpanExporter(), max_queue_size=100_000))
    return provider


class BusSystem:
    name = "bus"
    roles = tuple(ROLES)

    def prepare(self, url: str) -> None:
        bus = bench_bus(url)
        bus.subscribe_all()
        bus.close()

    def publisher(self, url: str) -> BusPublisher:
        return BusPublisher(url)

    def service(self, spec: ChildSpec, handler: Handler) -> BusService:
        return BusService(spec, handler)
