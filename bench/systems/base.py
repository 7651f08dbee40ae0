"""What every system under test provides, and what a worker process is told to run.

A system publishes on one side (:class:`Publisher`) and serves on the other
(:class:`Service`, run in a spawned worker process until told to stop).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bench.workload import Handler


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """What one worker process runs (picklable: it crosses a spawn)."""

    system: str
    url: str
    role: str = "all"
    batch_size: int | None = None
    concurrency: int | None = None
    threads: int = 8
    record_latency: bool = False
    profile: str | None = None
    profile_threads: bool = False
    profile_cpu: bool = False
    result_path: str = ""
    tracing: bool = True
    metrics: bool = True
    trace_sample: float | None = None
    """The bus's ``observe.trace_sample``; None: its default."""
    publish_replicas: int = 0
    """The bus's ``publish_replicas``: drivers on a cluster wait for replicas before acking."""
    config: str = ""
    """System-specific settings as JSON (the switchboard's emulator endpoints, channel, count)."""
    otel_sdk: bool = False
    """Configure the OpenTelemetry SDK in the worker: every span recorded (batch processor,
    in-memory exporter), as a deployment that traces everything would."""


class Stop(Protocol):
    def is_set(self) -> bool: ...
    def wait(self, timeout: float | None = None) -> bool: ...


class Publisher(Protocol):
    def publish(self, attributes: dict[str, Any]) -> None: ...
    def publish_batch(self, batch: Sequence[dict[str, Any]]) -> None: ...
    def close(self) -> None: ...


class Service(Protocol):
    def run(self, stop: Stop) -> None:
        """Work until ``stop`` is set, then return."""


class System(Protocol):
    name: str
    roles: tuple[str, ...]

    def prepare(self, url: str) -> None:
        """Store subscriptions (on an empty server)."""

    def publisher(self, url: str) -> Publisher: ...

    def service(self, spec: ChildSpec, handler: Handler) -> Service: ...


def watch(stop: Stop, action: Callable[[], None]) -> None:
    """Call ``action`` (in a daemon thread) once ``stop`` is set: how a worker loop is told to stop."""

    def wait_then_act() -> None:
        stop.wait()
        action()

    threading.Thread(target=wait_then_act, name="bench-stop", daemon=True).start()
