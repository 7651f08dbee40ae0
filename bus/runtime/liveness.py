"""A worker's presence in Redis: its registration, its heartbeat, and the recovery of dead peers.

Registered as Resque registers workers (``resque:workers``, ``worker:<id>:started``) plus
our description and heartbeat hashes. A background thread heartbeats; a worker whose
heartbeat is older than ``dead_after`` is declared dead by a live one, which requeues its
in-flight jobs. A worker that finds itself declared dead (a long pause) registers again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from bus.backend.clock import Clock
from bus.backend.connection import TRANSIENT_ERRORS, with_retries
from bus.errors import RedisUnavailable
from bus.keys import Keys
from bus.pipeline.envelope import dumps
from bus.runtime.recovery import iso_time, recover_dead_workers
from bus.settings import WorkerSettings

log = logging.getLogger("bus.worker")


class Presence:
    """Registers one worker, heartbeats for it in a thread, and recovers dead workers' jobs."""

    def __init__(
        self,
        redis: Any,
        keys: Keys,
        worker_id: str,
        *,
        hostname: str,
        describe: Callable[[], dict[str, Any]],
        settings: WorkerSettings,
        clock: Clock,
        atomic: bool,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.worker_id = worker_id
        self.hostname = hostname
        self.describe = describe
        """What the dashboard shows of this worker (read at each registration)."""
        self.settings = settings
        self.clock = clock
        self.atomic = atomic
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def register(self, *, until: Callable[[], bool], sleep: Callable[[float], Any] = time.sleep) -> bool:
        """Announce this worker, retried while Redis is down; False if ``until()`` said stop first
        (nothing was taken yet, so a stop needs no grace period). ``sleep`` waits between tries."""
        try:
            with_retries(
                self._write_registration, what="register worker", patience=None, should_stop=until, sleep=sleep
            )
        except RedisUnavailable:
            if until():
                return False
            raise
        return True

    def _write_registration(self) -> None:
        now = self.clock()
        pipe = self.redis.pipeline(transaction=self.atomic)
        pipe.sadd(self.keys.workers, self.worker_id)
        pipe.set(self.keys.worker_started(self.worker_id), time.strftime("%Y-%m-%d %H:%M:%S %z", time.gmtime(now)))
        pipe.hset(self.keys.bus_workers, self.worker_id, dumps({**self.describe(), "started_at": now}))
        pipe.hset(self.keys.workers_heartbeat, self.worker_id, iso_time(now))
        pipe.execute()

    def start(self) -> None:
        """Recover dead workers now, then heartbeat (and recover now and then) until :meth:`stop`.

        The heartbeat outlives the worker's own stop request: a worker draining its running
        jobs must not look dead, or a peer would requeue those jobs and run them twice.
        """
        self.recover()
        self._thread = threading.Thread(target=self._beat, args=(self._stop,), name="bus-housekeeping", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop heartbeating (once the worker has nothing running) and wait for the thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def recover(self) -> None:
        try:
            recover_dead_workers(
                self.redis,
                self.keys,
                now=self.clock(),
                dead_after=self.settings.dead_after,
                hostname=self.hostname,
                exclude=self.worker_id,
            )
        except TRANSIENT_ERRORS as exc:
            log.warning("dead-worker recovery skipped: %s", exc)

    def _beat(self, stop: threading.Event) -> None:
        next_recovery = time.monotonic() + self.settings.recovery_interval
        while not stop.wait(self.settings.heartbeat_interval):
            try:
                self.redis.hset(self.keys.workers_heartbeat, self.worker_id, iso_time(self.clock()))
                if not self.redis.hexists(self.keys.bus_workers, self.worker_id):
                    log.warning("worker %s was declared dead by another worker; registering again", self.worker_id)
                    self._write_registration()  # one try: the next beat tries again
                if time.monotonic() >= next_recovery:
                    self.recover()
                    next_recovery = time.monotonic() + self.settings.recovery_interval
            except TRANSIENT_ERRORS as exc:
                log.warning("heartbeat failed: %s", exc)
