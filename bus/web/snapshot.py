"""Everything the Overview shows, read in a few pipelined round trips, and what looks stuck."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from bus.keys import Keys
from bus.safejson import read_json
from bus.stores.delayed import Delayed
from bus.stores.overview import (
    MinuteCount,
    WorkerStat,
    queue_stats,
    resque_workers,
    throughput,
    totals,
    worker_activity,
    worker_stats,
)
from bus.stores.queues import Queues
from bus.web.job_views import view_job
from bus.web.names import isolated

SLOW_QUEUE_AFTER = 300.0


@dataclass(frozen=True, slots=True)
class QueueRow:
    name: str
    pending: int
    in_flight: int
    retrying: int
    processed_hour: int
    failed_hour: int
    per_minute: float
    """Jobs processed per minute over the last five minutes."""
    oldest: float | None
    """When the job at the head of the queue was queued, if it says."""
    listeners: int
    """Live workers taking jobs from this queue."""


@dataclass(frozen=True, slots=True)
class WorkerRow(WorkerStat):
    """A worker as the overview lists it: its stats and the jobs it is running; ``kind`` is
    ``resque`` for a Ruby or Node worker registered the Resque way."""

    current: tuple[str, ...] = ()
    kind: str = "bus"
    """``bus`` for workers of this library, ``resque`` for Ruby/Node workers on the same Redis."""


@dataclass(slots=True)
class Snapshot:
    now: float
    queues: list[QueueRow]
    workers: list[WorkerRow]
    counters: dict[str, int | None]
    series: list[MinuteCount]
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "now": self.now,
            "counters": self.counters,
            "queues": [asdict(q) for q in self.queues],
            "workers": [{**asdict(w), "queues": list(w.queues), "current": list(w.current)} for w in self.workers],
            "throughput": series_json(self.series),
            "problems": self.problems,
        }


def series_json(series: list[MinuteCount]) -> dict[str, list[int]]:
    return {
        "minutes": [m.minute for m in series],
        "processed": [m.processed for m in series],
        "failed": [m.failed for m in series],
    }


def take(redis: Any, keys: Keys, *, now: float, dead_after: float, hostname: str) -> Snapshot:
    stats = queue_stats(redis, keys)
    workers = _bus_workers(redis, keys, now=now, dead_after=dead_after, hostname=hostname)
    workers += _resque_workers(redis, keys, {w.id for w in workers}, now=now)
    names = [s.name for s in stats]
    per_queue = throughput(redis, keys, names, now=now)
    heads = {name: view_job(0, raw) for name, raw in Queues(redis, keys).heads(names).items()}
    rows = []
    for stat in stats:
        minutes = per_queue.get(stat.name, [])
        listeners = sum(1 for w in workers if w.alive and stat.name in w.queues)
        rows.append(
            QueueRow(
                stat.name,
                stat.pending,
                stat.in_flight,
                stat.retrying,
                sum(m.processed for m in minutes),
                sum(m.failed for m in minutes),
                sum(m.processed for m in minutes[-5:]) / 5,
                heads[stat.name].since if heads.get(stat.name) else None,
                listeners,
            )
        )
    counts = totals(redis, keys)
    scheduled = Delayed(redis, keys).summary(now)
    counters: dict[str, int | None] = {
        **counts,
        "pending": sum(r.pending for r in rows),
        "in_flight": sum(r.in_flight for r in rows),
        "retrying": sum(r.retrying for r in rows),
        "delayed": scheduled.jobs,
        "delayed_timestamps": scheduled.timestamps,
        "delayed_overdue": scheduled.overdue,
        "workers_alive": sum(1 for w in workers if w.alive),
        "workers_dead": sum(1 for w in workers if not w.alive),
    }
    snap = Snapshot(now, rows, workers, counters, _summed(per_queue, now))
    snap.problems = problems(snap)
    return snap


def problems(snap: Snapshot) -> list[str]:
    """Plain sentences about what looks stuck, most urgent first."""
    out = []
    for q in snap.queues:
        if q.pending and not q.listeners:
            out.append(f"{q.pending:,} job(s) wait in {isolated(q.name)} and no live worker takes jobs from it.")
        elif q.pending and q.oldest is not None and snap.now - q.oldest > SLOW_QUEUE_AFTER:
            out.append(f"The oldest job in {isolated(q.name)} has waited {int((snap.now - q.oldest) // 60)} min.")
    for w in snap.workers:
        if not w.alive and w.in_flight:
            out.append(
                f"Worker {isolated(w.id)} looks dead with {w.in_flight} job(s) in flight; they go back to their "
                "queues when a live worker on those queues notices."
            )
    overdue = snap.counters.get("delayed_overdue") or 0
    if overdue:
        out.append(f"{overdue} delayed timestamp(s) are overdue: is a scheduler running (bus scheduler)?")
    failed = snap.counters.get("failed_entries") or 0
    if failed:
        out.append(f"{failed:,} job(s) are in the failed list.")
    return out


def _bus_workers(redis: Any, keys: Keys, *, now: float, dead_after: float, hostname: str) -> list[WorkerRow]:
    stats = worker_stats(redis, keys, dead_after=dead_after, hostname=hostname, now=now)
    activity = worker_activity(redis, keys, stats)
    rows = []
    for s in stats:
        doing = activity[s.id]
        current = [view_job(0, raw).summary for raw in doing.in_flight]
        if doing.marked and not current:
            current = [_marked_job(doing.marked)]
        rows.append(WorkerRow(**s.values(), current=tuple(current)))
    return rows


def _resque_workers(redis: Any, keys: Keys, known: set[str], *, now: float) -> list[WorkerRow]:
    return [
        WorkerRow(**w.stat.values(), current=(_marked_job(w.marked),) if w.marked else (), kind="resque")
        for w in resque_workers(redis, keys, known, now=now)
    ]


def _marked_job(raw: bytes) -> str:
    """Resque's ``worker:<id>`` value: ``{"queue":..., "run_at":..., "payload":{job}}``."""
    try:
        data = read_json(raw)
        payload = json.dumps(data.get("payload")).encode()
    except (ValueError, AttributeError):
        return "unreadable current job"
    return view_job(0, payload).summary


def _summed(per_queue: dict[str, list[MinuteCount]], now: float) -> list[MinuteCount]:
    last = int(now // 60)
    total = {m: [0, 0] for m in range(last - 59, last + 1)}
    for minutes in per_queue.values():
        for m in minutes:
            total[m.minute][0] += m.processed
            total[m.minute][1] += m.failed
    return [MinuteCount(m, p, f) for m, (p, f) in total.items()]
