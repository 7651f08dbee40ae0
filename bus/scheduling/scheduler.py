"""The scheduler process: moves due delayed events to their queues and publishes the heartbeat.

Any number may run (one per host for availability): each due item is moved by one
atomic script, so it reaches ``bus_incoming`` exactly once, and due times are judged by
the Redis server's clock, so host clock skew does not matter.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import Any

from bus.backend.connection import TRANSIENT_ERRORS, is_cluster, with_retries
from bus.errors import RedisUnavailable
from bus.keys import Keys
from bus.pipeline.envelope import dumps
from bus.scheduling.heartbeat import Heartbeat
from bus.stores.delayed import MOVE_DUE
from bus.stores.delayed_cluster import move_due_across_slots

log = logging.getLogger("bus.scheduler")


class Scheduler:
    """Delivers delayed events when due and keeps the heartbeat going."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        heartbeat: Heartbeat,
        *,
        hostname: str,
        clock: Callable[[], float],
        server_clock: bool = True,
        interval: float = 1.0,
        batch: int = 1000,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.heartbeat = heartbeat
        self.clock = clock
        self.server_clock = server_clock
        """True when ``clock`` is the server's: the move script then reads TIME itself."""
        self.interval = interval
        self.batch = batch
        self.id = f"{hostname}:{os.getpid()}:scheduler"
        self.moved = 0
        self.failed = 0

    def move_due(self) -> int:
        """Move every item due now; returns how many reached their queues."""
        moved_total = 0
        while True:
            moved, bad, _ts = self._move_batch()
            moved_total += moved
            self.moved += moved
            self.failed += bad
            if bad:
                log.error("%d delayed item(s) were not jobs; moved to failed", bad)
            if moved == 0 and bad == 0:
                return moved_total

    def _failure_parts(self) -> tuple[str, str]:
        """A failure entry for a delayed item that is not a job, split around its payload."""
        failed_at = datetime.fromtimestamp(self.clock(), UTC).strftime("%Y/%m/%d %H:%M:%S UTC")
        head = '{"failed_at":' + dumps(failed_at) + ',"payload":'
        tail = (
            ',"exception":"bus.errors.MalformedJob","error":"delayed item is not a job (bad JSON, or no class or '
            'queue)","backtrace":[],"worker":' + dumps(self.id) + ',"queue":""}'
        )
        return head, tail

    def _move_batch(self) -> tuple[int, int, int]:
        keys = self.keys
        head, tail = self._failure_parts()
        if is_cluster(self.redis):
            return move_due_across_slots(
                self.redis,
                keys,
                now=int(self.clock()),
                scheduler_id=self.id,
                batch=self.batch,
                failure=lambda item: head + dumps({"class": None, "args": [item.decode("utf-8", "replace")]}) + tail,
            )
        now = "" if self.server_clock else str(int(self.clock()))
        reply = self.redis.eval(
            MOVE_DUE,
            4,
            keys.delayed_queue_schedule,
            keys.queues,
            keys.failed,
            keys.stat_failed,
            now,
            keys.prefix,
            self.batch,
            head,
            tail,
        )
        return int(reply[0]), int(reply[1]), int(reply[2])

    def tick(self) -> None:
        """One round: deliver what is due, then the heartbeat."""
        self.move_due()
        self.heartbeat.tick()

    def run(self, stop: threading.Event | None = None, *, burst: bool = False) -> int:
        """Loop until ``stop`` is set (or SIGTERM/SIGINT when run as its own process)."""
        stop = stop or threading.Event()
        if threading.current_thread() is threading.main_thread():
            self._install_signals(stop)
        log.info("scheduler %s started", self.id)
        while not stop.is_set():
            try:
                with_retries(self.tick, what="scheduler round", patience=None, should_stop=stop.is_set)
            except RedisUnavailable:
                break
            except TRANSIENT_ERRORS as exc:  # pragma: no cover - with_retries handles these
                log.warning("scheduler round failed: %s", exc)
            if burst:
                break
            stop.wait(self.interval)
        log.info("scheduler %s stopped: %d delivered, %d failed", self.id, self.moved, self.failed)
        return 0

    @staticmethod
    def _install_signals(stop: threading.Event) -> None:
        def on_signal(signum: int, frame: FrameType | None) -> None:
            stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
