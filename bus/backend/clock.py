"""Time as the Redis server sees it, so hosts with skewed clocks agree on due times."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

Clock = Callable[[], float]


class ServerClock:
    """Local time corrected by the offset to the server's ``TIME``, re-measured now and then.

    Heartbeats, retry due times and scheduler checks compare times written by different
    hosts; reading them all through the server's clock makes host skew irrelevant.
    """

    def __init__(self, redis: Any, *, local: Clock = time.time, resync_every: float = 60.0) -> None:
        self.redis = redis
        self.local = local
        self.resync_every = resync_every
        self._offset = 0.0
        self._synced_at = float("-inf")

    def __call__(self) -> float:
        if time.monotonic() - self._synced_at > self.resync_every:
            self.sync()
        return self.local() + self._offset

    def sync(self) -> None:
        self._synced_at = time.monotonic()
        try:
            before = self.local()
            seconds, micros = self.redis.time()
            after = self.local()
        except Exception:  # noqa: BLE001 - keep the last offset; Redis errors surface elsewhere
            return
        self._offset = (seconds + micros / 1e6) - (before + after) / 2
