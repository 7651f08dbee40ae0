"""Where a worker runs its jobs beside the loop: daemon threads for plain handlers, one event
loop for ``async def`` ones; outcomes come back to the worker loop either way.

``concurrency`` threads run plain handlers, each one job at a time; the event loop runs up to
``concurrency`` async rides at once, with ``concurrency`` threads of its own for an app's
plain middleware around them. Jobs beyond that wait their turn (the worker reserves a batch
ahead). Daemon threads, so a worker
whose grace period ran out can exit while a handler hangs.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import queue as threadqueue
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from bus.pipeline.envelope import Job
from bus.pipeline.rider import SyncRunner
from bus.stores.reservations import Outcomes, Reserved

log = logging.getLogger("bus.worker")

AsyncRun = Callable[[Reserved, Job, SyncRunner], Awaitable[Outcomes]]


class JobPool:
    """Runs jobs off the worker loop's thread; outcomes come back through :meth:`results`."""

    def __init__(
        self,
        size: int,
        run: Callable[[Reserved, Job], Outcomes],
        fail: Callable[[Reserved, Job, BaseException], Outcomes],
        run_async: AsyncRun | None = None,
    ) -> None:
        self._size = size
        self._run = run
        self._fail = fail
        self._run_async = run_async
        self._todo: threadqueue.Queue[tuple[Reserved, Job]] = threadqueue.Queue()
        self._done: threadqueue.Queue[tuple[Reserved, Outcomes]] = threadqueue.Queue()
        self._held: Counter[tuple[str, bytes]] = Counter()
        """Jobs submitted and not yet finished, counted: two jobs may have the same bytes."""
        self._outstanding = 0
        self._lock = threading.Lock()
        self._threads = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._middleware_threads: concurrent.futures.ThreadPoolExecutor | None = None
        self._turns: asyncio.Semaphore | None = None
        self._rides: set[asyncio.Future[None]] = set()

    # --- plain handlers: threads -------------------------------------------------
    def submit(self, reserved: Reserved, job: Job) -> None:
        """Run ``job`` on a thread (started on first need, at most ``size``)."""
        self._hold(reserved)
        self._todo.put((reserved, job))
        if self._threads < self._size:
            threading.Thread(target=self._serve, name=f"bus-job-{self._threads}", daemon=True).start()
            self._threads += 1

    def _serve(self) -> None:
        while True:
            reserved, job = self._todo.get()
            try:
                outcome = self._run(reserved, job)
            except BaseException as exc:
                log.exception("job on %s ended its thread's run; recorded as failed", reserved.queue)
                outcome = self._fail(reserved, job, exc)
            self._done.put((reserved, outcome))

    # --- async handlers: one event loop -----------------------------------------
    def submit_async(self, jobs: list[tuple[Reserved, Job]]) -> None:
        """Ride ``jobs`` (``async def`` handlers) on the pool's event loop: one wake-up of the
        loop for the whole batch."""
        loop = self._loop or self._start_loop()
        for reserved, _ in jobs:
            self._hold(reserved)
        loop.call_soon_threadsafe(self._start_rides, jobs)

    def _start_rides(self, jobs: list[tuple[Reserved, Job]]) -> None:
        for reserved, job in jobs:
            task = asyncio.get_running_loop().create_task(self._ride(reserved, job))
            self._rides.add(task)  # the loop keeps only weak references to its tasks
            task.add_done_callback(self._rides.discard)

    def _start_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        self._middleware_threads = concurrent.futures.ThreadPoolExecutor(self._size, thread_name_prefix="bus-mw")
        loop.set_default_executor(self._middleware_threads)
        self._turns = asyncio.Semaphore(self._size)
        threading.Thread(target=loop.run_forever, name="bus-async-rides", daemon=True).start()
        self._loop = loop
        return loop

    async def _ride(self, reserved: Reserved, job: Job) -> None:
        try:
            if self._run_async is None or self._turns is None:
                raise RuntimeError("this pool runs no async handlers")
            async with self._turns:
                outcome = await self._run_async(reserved, job, _to_thread)
        except BaseException as exc:
            log.exception("async job on %s ended outside its ride; recorded as failed", reserved.queue)
            outcome = self._fail(reserved, job, exc)
        self._done.put((reserved, outcome))

    # --- outcomes ------------------------------------------------------------------
    def _hold(self, reserved: Reserved) -> None:
        with self._lock:
            self._held[(reserved.queue, reserved.raw)] += 1
            self._outstanding += 1

    def results(self, timeout: float) -> list[Outcomes]:
        out: list[Outcomes] = []
        try:
            item = self._done.get(timeout=timeout) if timeout > 0 else self._done.get_nowait()
            while True:
                reserved, outcome = item
                with self._lock:
                    key = (reserved.queue, reserved.raw)
                    if self._held[key] > 1:
                        self._held[key] -= 1
                    else:
                        self._held.pop(key, None)
                    self._outstanding -= 1
                out.append(outcome)
                item = self._done.get_nowait()
        except threadqueue.Empty:
            return out

    @property
    def outstanding(self) -> int:
        with self._lock:
            return self._outstanding

    @property
    def busy(self) -> bool:
        return self.outstanding > 0

    def held(self) -> set[tuple[str, bytes]]:
        with self._lock:
            return set(self._held)


async def _to_thread(call: Callable[[], Any]) -> Any:
    """Run a blocking call on the loop's executor, in the caller's context (the ride, its span)."""
    return await asyncio.to_thread(call)
