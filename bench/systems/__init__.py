"""The systems under test, by name: this repository's bus, the raw redis-py floor, the peers.

``bus`` is this repository; ``raw`` is the floor (redis-py, batched, no reliability);
``dramatiq`` and ``py-queue-bus`` are the peers, run only when importable; ``switchboard``
is the notification app, and ``direct`` (its provider classes called directly) and ``sdks``
(the providers' official SDKs called directly) its baselines. Each is imported only where it
is used, so a worker process holds only its own system (and this module stays light: ``bus
work`` imports it in the idle-RSS figure).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bench.systems.base import System

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
    "bus": ("bench.systems.bus", "BusSystem"),
    "raw": ("bench.systems.raw", "RawSystem"),
    "dramatiq": ("bench.systems.dramatiq", "DramatiqSystem"),
    "dramatiq-driver": ("bench.systems.dramatiq", "DramatiqDriverSystem"),
    "py-queue-bus": ("bench.systems.py_queue_bus", "PyQueueBusSystem"),
    "switchboard": ("bench.systems.switchboard", "SwitchboardSystem"),
    "direct": ("bench.systems.direct", "DirectSystem"),
    "sdks": ("bench.systems.sdks", "SdkSystem"),
}
_DRAMATIQ = ("dramatiq", "dramatiq.brokers.redis")
_REQUIRES = {"dramatiq": _DRAMATIQ, "dramatiq-driver": _DRAMATIQ, "py-queue-bus": ("py_queue_bus",)}


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
