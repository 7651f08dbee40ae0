"""Loops over the same events that take turns, so every loop sees the same load.

The loops take turns in chunks of events (raw, bus, peers, raw, bus, ...), each timed on
its own and summed, so a change of load on the shared machine hits every loop alike and
the ratios compare figures taken within the same seconds (``publish``, ``publish_batch``,
``replicas``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

CHUNK = 1000
WARM_UP = 200
"""Events each publisher sends before the clock starts (connections, caches)."""

Loop = Callable[[Sequence[dict[str, Any]]], None]


def take_turns(loops: dict[str, Loop], events: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Run every loop over ``events``, CHUNK events at a time in turn; events/s of each."""
    spent = dict.fromkeys(loops, 0.0)
    for start in range(0, len(events), CHUNK):
        chunk = events[start : start + CHUNK]
        for name, loop in loops.items():
            started = time.perf_counter()
            loop(chunk)
            spent[name] += time.perf_counter() - started
    return {name: len(events) / seconds for name, seconds in spent.items()}


def one_by_one(publish: Callable[[dict[str, Any]], Any]) -> Loop:
    """A loop calling ``publish`` once per event."""

    def loop(chunk: Sequence[dict[str, Any]]) -> None:
        for attributes in chunk:
            publish(attributes)

    return loop
