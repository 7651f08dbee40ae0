"""The benchmark's apps as ``bus work bench.cli_app --driver`` loads them (idle RSS)."""

from __future__ import annotations

from typing import Any

from bench.workload import register_apps
from bus import Bus


def _handle(attributes: dict[str, Any]) -> None:
    return None


bus = Bus()
register_apps(bus, _handle)
