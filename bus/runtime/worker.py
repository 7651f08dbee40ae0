"""The worker loop: reserve a batch, run it, record the outcomes, stop cleanly.

One round trip per batch: the outcomes of the previous batch (acks, fan-out, retries,
failures, stats) and the reservation of the next one travel in one pipeline, inside
MULTI on a single server. Jobs wait in this worker's in-flight lists in Redis until
their outcome is recorded, so a worker killed at any point loses nothing: live workers
requeue the in-flight jobs of dead ones (``bus.runtime.liveness``: heartbeat and recovery).
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
from types import FrameType
from typing import Any

from bus.backend.clock import Clock, ServerClock
from bus.backend.connection import TRANSIENT_ERRORS, disconnect, is_cluster, pipe_eval, with_retries
from bus.backend.replication import ReplicaWait, wait_on_cluster
from bus.backoff import Backoff
from bus.errors import ConfigurationError, MalformedJob, PoisonJob, RedisRefused, RedisUnavailable
from bus.keys import INCOMING_QUEUE, Keys
from bus.pipeline.envelope import DRIVER_PROXY, WORKER_CLASS, Job, decode_job, dumps
from bus.pipeline.subscription import Subscription
from bus.runtime.grace import GraceExpired
from bus.runtime.liveness import Presence
from bus.runtime.observations import Observations
from bus.runtime.pool import JobPool
from bus.runtime.recovery import iso_time, requeue_inflight, unregister
from bus.runtime.runner import JobRunner
from bus.safejson import read_json
from bus.settings import BusSettings, WorkerSettings
from bus.stores.registry import Registry, SubscriptionCache
from bus.stores.reservations import (
    MOVE_BACK,
    PROMOTE,
    RESERVE,
    AckCheck,
    Inflight,
    Outcomes,
    Reserved,
    job_digest,
    parse_reserve,
)

RunnerFactory = Callable[[str, Clock, Callable[[], list[Subscription]]], JobRunner]
"""Builds a worker's runner from its id, its clock and how it loads subscriptions (``Bus.worker`` gives it)."""

APPLIED_TTL = 86_400
"""Seconds a worker's last applied token is kept (it is deleted when the worker stops)."""

log = logging.getLogger("bus.worker")
STOP_ERRORS: tuple[type[Exception], ...] = (RedisUnavailable, RedisRefused, *TRANSIENT_ERRORS)


def alternate_queues(rides: list[tuple[Reserved, Job]]) -> list[tuple[Reserved, Job]]:
    """A batch's rides taking turns by queue: they start in this order as slots free up, so one
    queue's backlog does not take every slot (and every connection to the API its handlers call)
    before the other queues' rides start."""
    by_queue: dict[str, list[tuple[Reserved, Job]]] = {}
    for ride in rides:
        by_queue.setdefault(ride[0].queue, []).append(ride)
    if len(by_queue) < 2:
        return rides
    turns = itertools.zip_longest(*by_queue.values())
    return [ride for turn in turns for ride in turn if ride is not None]


class Worker:
    """Runs the jobs of some queues: drives incoming events and rides app jobs."""

    def __init__(
        self,
        queues: list[str],
        *,
        redis: Any,
        keys: Keys,
        hostname: str,
        bus_settings: BusSettings,
        runner: RunnerFactory,
        replica_waits: ReplicaWait | None = None,
        apps: Callable[[], list[str]] = list,
        concurrency: int | None = None,
        batch_size: int | None = None,
        burst: bool = False,
        settings: WorkerSettings | None = None,
        clock: Clock | None = None,
        install_signals: bool = True,
    ) -> None:
        if not queues:
            raise ConfigurationError("a worker needs at least one queue (no app subscriptions and no --driver?)")
        base = settings or bus_settings.worker
        overrides = {k: v for k, v in (("concurrency", concurrency), ("batch_size", batch_size)) if v is not None}
        self.settings = replace(base, **overrides) if overrides else base
        self.queues = list(dict.fromkeys(queues))
        self.burst = burst
        self.keys = keys
        self.redis = redis
        self.replica_waits = replica_waits
        self.clock: Clock = clock or ServerClock(self.redis)
        self.hostname = hostname
        self.pid = os.getpid()
        self.id = f"{self.hostname}:{self.pid}:{','.join(self.queues)}"
        self.atomic = not is_cluster(self.redis)
        self.install_signals = install_signals
        self._trace_ttl = int(bus_settings.observe.trace_ttl)
        self.cache = SubscriptionCache(Registry(self.redis, self.keys), self.settings.subscriptions_max_age)
        self.runner = runner(
            self.id, self.clock, lambda: self._retrying(lambda: self.cache.get(self._version), "load subscriptions")
        )
        self._stopping = threading.Event()
        self._grace_deadline: float | None = None
        self._grace_expired = False
        self._pending = Outcomes()
        self._observed = Observations()
        self._observed_at = time.monotonic()
        self._flush_interval = bus_settings.observe.flush_interval
        self.inflight = Inflight(self.keys, self.id, self.queues)
        self._last_promote = 0.0
        self._exchanged_at = 0.0
        self._version: int | None = None
        self.presence = Presence(
            self.redis,
            self.keys,
            self.id,
            hostname=self.hostname,
            describe=lambda: {
                "host": self.hostname,
                "pid": self.pid,
                "queues": self.queues,
                "concurrency": self.settings.concurrency,
                "apps": apps(),
            },
            settings=self.settings,
            clock=self.clock,
            atomic=self.atomic,
        )
        self._pool: JobPool | None = None
        self._previous_handlers: dict[int, Any] = {}

    # --- lifecycle ------------------------------------------------------------
    def run(self) -> int:
        """Work until stopped (or, with ``burst``, until the queues are empty); exit code."""
        if self.install_signals and threading.current_thread() is threading.main_thread():
            self._install_signals()
        if not self.presence.register(until=self._stopping.is_set, sleep=self._stopping.wait):
            self._restore_signals()
            log.info("worker %s stopped before Redis answered: it took nothing", self.id)
            return 0
        log.info(
            "worker %s started (concurrency %d, batch %d)", self.id, self.settings.concurrency, self.settings.batch_size
        )
        crashed = False
        try:
            self.presence.start()
            if self.settings.concurrency > 1 or self.runner.has_async_handlers:
                self._pool = JobPool(
                    self.settings.concurrency, self.runner.run_alone, self.runner.fail_alone, self.runner.run_async
                )
            self._loop()
        except GraceExpired:
            if self._grace_expired:
                log.warning("shutdown grace period expired with jobs still running: they go back to their queues")
                disconnect(self.redis)
            else:  # raised by a job itself, not by the grace period: that job must not loop forever
                crashed = True
                log.error("a job raised GraceExpired itself; the jobs in flight count a crash each")
        except (RedisUnavailable, RedisRefused) as exc:
            log.error("stopping: %s", exc)
        except (KeyboardInterrupt, SystemExit):
            raise  # an interrupt of the program hosting the worker (handlers' own are their jobs' failures)
        except BaseException:
            crashed = True
            log.exception("the worker loop died; the jobs in flight count a crash each (max_crashes)")
        finally:
            self._shutdown(crashed=crashed)
        return 1 if crashed else 0

    def request_stop(self) -> None:
        """Stop fetching; finish running jobs within the grace period, then exit."""
        if not self._stopping.is_set():
            log.info("worker %s stopping (grace %.0fs)", self.id, self.settings.shutdown_grace)
            self._grace_deadline = time.monotonic() + self.settings.shutdown_grace
            self._stopping.set()

    @property
    def processed(self) -> int:
        """Jobs this worker finished (done, retried or failed) so far."""
        return self.runner.processed

    @property
    def failed(self) -> int:
        """Jobs this worker put on the failed list so far."""
        return self.runner.failed

    @property
    def stop_event(self) -> threading.Event:
        """Set when the worker stops: companions (a scheduler thread) stop with it."""
        return self._stopping

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def _install_signals(self) -> None:
        def on_term(signum: int, frame: FrameType | None) -> None:
            if self.stopping and signum == signal.SIGINT:
                self._grace_expired = True
                raise GraceExpired()
            self.request_stop()
            if self._pool is None:
                signal.setitimer(signal.ITIMER_REAL, self.settings.shutdown_grace)

        def on_alarm(signum: int, frame: FrameType | None) -> None:
            self._grace_expired = True
            raise GraceExpired()

        for signum, handler in ((signal.SIGTERM, on_term), (signal.SIGINT, on_term), (signal.SIGALRM, on_alarm)):
            self._previous_handlers[signum] = signal.signal(signum, handler)

    def _restore_signals(self) -> None:
        if self._previous_handlers:
            signal.setitimer(signal.ITIMER_REAL, 0)
            for signum, handler in self._previous_handlers.items():
                signal.signal(signum, handler)
            self._previous_handlers = {}

    def _shutdown(self, *, crashed: bool = False) -> None:
        self._restore_signals()
        if self._pool is not None:
            self._drain_pool(deadline=self._grace_deadline)
        self._stopping.set()
        try:
            try:
                patience = max(5.0, (self._grace_deadline or time.monotonic()) - time.monotonic())
                self._pending.observed.merge(self._observed)
                with_retries(lambda: self._flush(self._pending), what="final flush", patience=patience)
                moved = requeue_inflight(self.redis, self.keys, self.id, self.queues, crashed=crashed)
                if moved and crashed:
                    log.warning("requeued %d in-flight job(s), each with a crash counted", moved)
                elif moved and self._grace_expired:
                    log.warning("requeued %d job(s): those cut off by the grace period and those not started", moved)
                elif moved:
                    log.info("requeued %d job(s) not started", moved)
            finally:
                # Heartbeating up to here: finished but unacknowledged jobs stay ours until flushed.
                self.presence.stop()
            unregister(self.redis, self.keys, self.id)
        except STOP_ERRORS as exc:
            log.error("could not unregister cleanly (%s); live workers will requeue this worker's jobs", exc)
        log.info("worker %s stopped: %d processed, %d failed", self.id, self.processed, self.failed)

    # --- the loop -------------------------------------------------------------
    def _loop(self) -> None:
        backoff = Backoff(first=0.05, cap=2.0)
        while not self.stopping:
            try:
                if not self._step():
                    return
                backoff.reset()
            except TRANSIENT_ERRORS as exc:
                # A Redis call outside the retried round trips failed: wait, then put back
                # anything reserved that this process no longer holds, and carry on.
                delay = backoff.next()
                log.warning("Redis unreachable mid-batch (%s); retrying in %.2fs", exc, delay)
                self._stopping.wait(delay)
                self._retrying(lambda: self._reconcile(self._pending), "reconcile in-flight jobs")

    def _step(self) -> bool:
        """One turn of the loop; False when a burst worker is done."""
        self._linger()
        batch = self._exchange(self._want())
        if batch:
            self._handle(batch)
            return True
        if self._pool is not None and self._pool.busy:
            self._collect(timeout=0.05)
            return True
        if self.burst and not self._retries_waiting():
            return False
        batch = self._wait_for_job()
        if batch:
            self._handle(batch)
        return True

    def _linger(self) -> None:
        """While the pool runs jobs, gather their outcomes until ``linger`` has passed since the last
        round trip (or a batch's worth is in), so they share the next one: under load a trip carries
        tens of outcomes instead of one or two. A pool that runs dry ends the wait at once."""
        pool, linger = self._pool, self.settings.linger
        if pool is None or not linger:
            return
        deadline = self._exchanged_at + linger
        while pool.busy and len(self._pending.acks) < self.settings.batch_size and not self.stopping:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._collect(timeout=left)

    def _want(self) -> int:
        if self._pool is None:
            return self.settings.batch_size
        return max(0, self.settings.batch_size + self.settings.concurrency - self._pool.outstanding)

    def _handle(self, batch: list[Reserved]) -> None:
        drives: list[tuple[Reserved, Job]] = []
        rides: list[tuple[Reserved, Job]] = []  # async rides, handed to the event loop together
        for reserved in batch:
            if self.stopping:
                return  # unstarted jobs stay in flight and are requeued at shutdown
            if reserved.crashes:
                self.runner.drive(drives, self._pending)
                drives = []
                self._run_suspect(reserved)
                continue
            job = self.runner.decode(reserved, self._pending)
            if job is None:
                continue
            if job.proxy == DRIVER_PROXY and job.klass == WORKER_CLASS:
                drives.append((reserved, job))
            elif self._pool is not None:
                if self.runner.rides_async(job):
                    rides.append((reserved, job))
                else:
                    self._pool.submit(reserved, job)
                    self._collect(timeout=0)
            else:
                self.runner.run(reserved, job, self._pending)
        if rides and self._pool is not None:
            self._pool.submit_async(alternate_queues(rides))
        self.runner.drive(drives, self._pending)

    def _collect(self, timeout: float) -> None:
        """Take the outcomes the pool's threads finished (none without a pool)."""
        if self._pool is not None:
            for outcome in self._pool.results(timeout):
                self._pending.merge(outcome)

    def _drain_pool(self, deadline: float | None) -> None:
        while self._pool is not None and self._pool.busy and (deadline is None or time.monotonic() < deadline):
            self._collect(timeout=0.1)

    def _run_suspect(self, reserved: Reserved) -> None:
        """A job that was in flight when a worker died runs alone, its outcome saved at once."""
        if self._pool is not None:
            self._drain_pool(deadline=None)
        self._retrying(lambda: self._flush(self._pending), "flush")
        out = Outcomes()
        if reserved.crashes >= self.settings.max_crashes:
            error = PoisonJob(f"job was in flight when its worker died {reserved.crashes} times; not running it again")
            try:
                job: Job | None = decode_job(reserved.raw)
            except MalformedJob:
                job = None
            self.runner.fail(reserved, job, error, out)
        else:
            self._retrying(lambda: self.redis.set(self.keys.worker(self.id), self._current_job(reserved)), "mark job")
            job = self.runner.decode(reserved, out)
            if job is not None:
                out = self.runner.run_alone(reserved, job)
        out.crash_clears.append((reserved.queue, reserved.raw))
        self._retrying(lambda: self._flush(out), "flush")

    def _current_job(self, reserved: Reserved) -> str:
        try:
            payload: Any = read_json(reserved.raw)
        except ValueError:
            payload = reserved.raw.decode("utf-8", "replace")
        return dumps({"queue": reserved.queue, "run_at": iso_time(self.clock()), "payload": payload})

    # --- Redis round trips ----------------------------------------------------
    def _exchange(self, want: int) -> list[Reserved]:
        """Record pending outcomes and reserve up to ``want`` jobs per queue, in one trip."""
        pending, self._pending = self._pending, Outcomes()
        self._hold_observations(pending)
        promote = time.monotonic() - self._last_promote > self.settings.retry_poll_interval

        written = self.atomic  # on a single server the writes travel with the acks, in one MULTI

        checks: list[AckCheck] = []
        reserve_at = 0

        def attempt() -> list[Any]:
            nonlocal written, checks, reserve_at
            if not written:
                self._write_first(pending)
                written = True
            pipe = self.redis.pipeline(transaction=self.atomic)
            checks = self._queue_outcomes(pipe, pending)
            if promote:
                now = self.clock()
                for queue in self.queues:
                    pipe_eval(pipe, PROMOTE, [self.keys.retries(queue), self.keys.queue(queue)], now, 1000)
            first = len(pipe)
            if want > 0:
                pipe.get(self.keys.subscriptions_version)
                for queue in self.queues:
                    keys = [self.keys.queue(queue), self.keys.inflight(queue, self.id), self.keys.crashes(queue)]
                    pipe_eval(pipe, RESERVE, keys, want)
            reserve_at = first
            results: list[Any] = pipe.execute(raise_on_error=False)
            return results

        results = self._retrying(attempt, "worker round trip", reconcile=pending)
        self._exchanged_at = time.monotonic()
        if checks or pending.acks:
            self._retrying(lambda: self.inflight.settle(self.redis, results, checks, pending), "acknowledge")
        if promote:
            self._last_promote = time.monotonic()
        if want <= 0:
            return []
        version, *replies = results[reserve_at:]
        self._version = int(version or 0) if not isinstance(version, Exception) else None
        batch: list[Reserved] = []
        for queue, reply in zip(self.queues, replies, strict=True):
            if isinstance(reply, Exception):
                log.error("reserving from %s failed: %s", queue, reply)
                continue
            reserved = parse_reserve(queue, reply)
            self.inflight.reserved(queue, (r.raw for r in reserved))
            batch += reserved
        return batch

    def _hold_observations(self, outcomes: Outcomes) -> None:
        """Keep traces and metrics back, then send them all with ``outcomes`` once the interval is up."""
        self._observed.merge(outcomes.observed)
        outcomes.observed = Observations()
        if self._observed and time.monotonic() - self._observed_at >= self._flush_interval:
            outcomes.observed, self._observed = self._observed, Observations()
            self._observed_at = time.monotonic()

    def _flush(self, outcomes: Outcomes) -> None:
        if not outcomes:
            return
        if not self.atomic:
            self._write_first(outcomes)
        pipe = self.redis.pipeline(transaction=self.atomic)
        checks = self._queue_outcomes(pipe, outcomes)
        results = pipe.execute()
        self.inflight.settle(self.redis, results, checks, outcomes)

    def _queue_outcomes(self, pipe: Any, outcomes: Outcomes) -> list[AckCheck]:
        """Queue the acks (and on a single server the writes) of ``outcomes``, at most once.

        A MULTI whose reply was lost may have run: it stored the outcomes' token, so a retry
        that finds the token sends neither the writes (fan-out, failures, counts) nor the acks
        again, and reruns nothing. On a cluster the writes go first, apart (at least once).
        """
        if not outcomes or not self.atomic:
            return self.inflight.queue_acks(pipe, outcomes)
        applied = self.keys.applied(self.id)
        if outcomes.token:
            if self.redis.get(applied) in (outcomes.token, outcomes.token.encode()):
                return []  # applied already: settle() drops the acks from the local record
        else:
            outcomes.token = os.urandom(8).hex()
        outcomes.write(pipe, self.keys, self.id, int(self.clock() // 60), self._trace_ttl, scripts=True)
        checks = self.inflight.queue_acks(pipe, outcomes)
        pipe.set(applied, outcomes.token, ex=APPLIED_TTL)
        return checks

    def _write_first(self, outcomes: Outcomes) -> None:
        """On a cluster, where one MULTI cannot span the slots: record new work, then ack.

        A crash in between redoes the batch (at least once), never loses it.
        """
        pipe = self.redis.pipeline(transaction=False)
        outcomes.write(pipe, self.keys, self.id, int(self.clock() // 60), self._trace_ttl, scripts=self.atomic)
        if len(pipe):
            pipe.execute()
        waits = self.replica_waits
        if waits is not None and (outcomes.pushes or outcomes.failures):
            # Replicas first: an ack that outlives a lost fan-out would lose the event.
            written = [self.keys.queue(queue) for queue in outcomes.pushes]
            if outcomes.failures:
                written.append(self.keys.failed)
            # A master lost meanwhile may have taken the writes with it: a failed wait makes
            # the round trip's retry send them again (duplicates, never a loss).
            wait_on_cluster(self.redis, self.keys, written, waits)

    def _wait_for_job(self) -> list[Reserved]:
        """Block until a job arrives: on ``bus_incoming`` if this worker drives (every event
        starts there), else on its first queue; briefly when there are other queues to look at."""
        queue = INCOMING_QUEUE if INCOMING_QUEUE in self.queues else self.queues[0]
        timeout = self.settings.idle_wait if len(self.queues) == 1 else min(0.1, self.settings.idle_wait)
        key, inflight = self.keys.queue(queue), self.keys.inflight(queue, self.id)
        raw = self._retrying(
            lambda: self.redis.blmove(key, inflight, timeout, "LEFT", "RIGHT"), "wait for jobs", reconcile=self._pending
        )
        if raw is None:
            return []
        self.inflight.reserved(queue, [raw])
        crashes = self._retrying(lambda: self.redis.hget(self.keys.crashes(queue), job_digest(raw)), "check job")
        return [Reserved(queue, raw, int(crashes or 0))]

    def _retries_waiting(self) -> bool:
        pipe = self.redis.pipeline(transaction=False)
        for queue in self.queues:
            pipe.exists(self.keys.retries(queue))
        return any(self._retrying(pipe.execute, "check retries"))

    def _retrying(self, call: Callable[[], Any], what: str, *, reconcile: Outcomes | None = None) -> Any:
        """Retry while Redis is down. With ``reconcile`` (the outcomes this call acknowledges), a
        round trip that may have reserved jobs whose reply was lost first puts those back, before
        it is tried again: never after, when the retry has reserved jobs of its own."""
        broken = False

        def attempt() -> Any:
            nonlocal broken
            if broken and reconcile is not None:
                self._reconcile(reconcile)
            try:
                result = call()
            except TRANSIENT_ERRORS:
                broken = True
                raise
            broken = False
            return result

        return with_retries(attempt, what=what, patience=None, should_stop=self._gave_up)

    def _gave_up(self) -> bool:
        return self.stopping and self._grace_deadline is not None and time.monotonic() > self._grace_deadline

    def _reconcile(self, finished: Outcomes) -> None:
        """Requeue the in-flight jobs this process neither runs (pool) nor has finished (their acks
        are in ``finished``): reserved by a reply that was lost, or left by a batch that broke off."""
        keep = Counter(finished.acks)
        if self._pool is not None:
            keep.update(self._pool.held())
        for queue in self.queues:
            inflight, key = self.keys.inflight(queue, self.id), self.keys.queue(queue)
            for raw in self.redis.lrange(inflight, 0, -1):
                if keep[(queue, raw)] > 0:
                    keep[(queue, raw)] -= 1
                    continue
                self.redis.eval(MOVE_BACK, 2, inflight, key, raw)
                self.inflight.forget(queue, raw)
