"""A small pool of daemon threads for ``--concurrency N``: jobs in, outcomes back to the loop.

Daemon threads, so a worker whose grace period ran out can exit while a handler hangs.
"""

from __future__ import annotations

import logging
import queue as threadqueue
import threading
from collections.abc import Callable

from bus.pipeline.envelope import Job
from bus.stores.reservations import Outcomes, Reserved

log = logging.getLogger("bus.worker")


class JobPool:
    """Daemon threads running jobs; outcomes come back to the loop thread."""

    def __init__(
        self,
        size: int,
        run: Callable[[Reserved, Job], Outcomes],
        fail: Callable[[Reserved, Job, BaseException], Outcomes],
    ) -> None:
        self._run = run
        self._fail = fail
        self._todo: threadqueue.Queue[tuple[Reserved, Job]] = threadqueue.Queue()
        self._done: threadqueue.Queue[tuple[Reserved, Outcomes]] = threadqueue.Queue()
        self._held: set[tuple[str, bytes]] = set()
        self._lock = threading.Lock()
        for n in range(size):
            threading.Thread(target=self._serve, name=f"bus-job-{n}", daemon=True).start()

    def _serve(self) -> None:
        while True:
            reserved, job = self._todo.get()
            try:
                outcome = self._run(reserved, job)
            except BaseException as exc:
                log.exception("job on %s ended its thread's run; recorded as failed", reserved.queue)
                outcome = self._fail(reserved, job, exc)
            self._done.put((reserved, outcome))

    def submit(self, reserved: Reserved, job: Job) -> None:
        with self._lock:
            self._held.add((reserved.queue, reserved.raw))
        self._todo.put((reserved, job))

    def results(self, timeout: float) -> list[Outcomes]:
        out: list[Outcomes] = []
        try:
            item = self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait()
            while True:
                reserved, outcome = item
                with self._lock:
                    self._held.discard((reserved.queue, reserved.raw))
                out.append(outcome)
                item = self._done.get_nowait()
        except threadqueue.Empty:
            return out

    @property
    def outstanding(self) -> int:
        with self._lock:
            return len(self._held)

    @property
    def busy(self) -> bool:
        return self.outstanding > 0

    def held(self) -> set[tuple[str, bytes]]:
        with self._lock:
            return set(self._held)
