"""The benchmark's apps as ``bus work tests.bench.cli_app --driver`` loads them (idle RSS)."""

from __future__ import annotations

from typing import Any

from bus import Bus
from tests.bench.workload import register_apps


def _handle(attributes: dict[str, Any]) -> None:
    return None


bus = Bus()
register_apps(bus, _handle)
