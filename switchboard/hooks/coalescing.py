"""Publishing the events of concurrent requests together: one round trip for all that wait.

Each request waits until its events are on the bus (it answers 2xx only then), but requests
arriving while a publish is in flight share the next one (group commit): with many
callbacks in flight, a receiver spends one Redis round trip per batch of them, not per
request. A failed publish fails every request of its batch (each answers 503).
"""

from __future__ import annotations

import asyncio
from typing import Any

from bus import Bus
from bus.pipeline.publisher import Event


class Coalescer:
    """Publishes for the requests of one event loop (the receiver's)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._waiting: list[tuple[list[Event], asyncio.Future[None]]] = []
        self._flushing: asyncio.Task[None] | None = None

    async def publish(self, events: list[Event]) -> None:
        """Return once ``events`` are on the bus (raise what the publish raised)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((events, done))
        if self._flushing is None:
            self._flushing = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                try:
                    await self.bus.apublish_many([event for events, _ in batch for event in events])
                except Exception as exc:  # noqa: BLE001 - handed to every waiting request
                    _settle(batch, exc)
                else:
                    _settle(batch, None)
        finally:
            self._flushing = None


def _settle(batch: list[tuple[list[Event], asyncio.Future[None]]], error: Any) -> None:
    for _, done in batch:
        if done.done():
            continue
        if error is None:
            done.set_result(None)
        else:
            done.set_exception(error)
