"""The systems under test, behind one small interface: publish on one side, serve on the other.

``bus`` is this repository; ``raw`` is the floor (redis-py, batched, no reliability);
``dramatiq`` and ``py-queue-bus`` are the peers, run only when importable. Each is
imported only where it is used, so a worker process holds only its own system.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bench.workload import Handler

SYSTEMS = ("bus", "raw", "dramatiq", "dramatiq-driver", "py-queue-bus")
PEERS = ("dramatiq", "dramatiq-driver", "py-queue-bus")
DEFAULT_PEERS = ("dramatiq", "py-queue-bus")
LABELS = {
    "bus": "bus",
    "raw": "raw fan-out floor",
    "dramatiq": "Dramatiq",
    "dramatiq-driver": "Dramatiq (drive actor)",
    "py-queue-bus": "py-queue-bus",
}
_MODULES = {
    "bus": ("bench.bus_system", "BusSystem"),
    "raw": ("bench.raw", "RawSystem"),
    "dramatiq": ("bench.peers", "DramatiqSystem"),
    "dramatiq-driver": ("bench.peers", "DramatiqDriverSystem"),
    "py-queue-bus": ("bench.peers", "PyQueueBusSystem"),
    "switchboard": ("bench.switchboard_system", "SwitchboardSystem"),
    "direct": ("bench.switchboard_system", "DirectSystem"),
}
_DRAMATIQ = ("dramatiq", "dramatiq.brokers.redis")
_REQUIRES = {"dramatiq": _DRAMATIQ, "dramatiq-driver": _DRAMATIQ, "py-queue-bus": ("py_queue_bus",)}


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


def get(name: str) -> System:
    module, attribute = _MODULES[name]
    system: System = getattr(importlib.import_module(module), attribute)()
    return system


def missing(name: str) -> str | None:
    """Why a system cannot run here (a peer not installed), or None."""
    for module in _REQUIRES.get(name, ()):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            return f"{name} is not installed ({exc}); pip install -e '.[bench]'"
    return None
