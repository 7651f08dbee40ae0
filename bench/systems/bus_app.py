"""The benchmark's apps as ``bus work bench.systems.bus_app --driver`` loads them (the ``rss`` scenario)."""

from __future__ import annotations

from typing import Any

from bench.workload import register_apps
from bus import Bus


def _handle(attributes: dict[str, Any]) -> None:
    return None


bus = Bus()
register_apps(bus, _handle)
