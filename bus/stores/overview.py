"""What is on the bus right now: queues, in-flight work, retries and workers.

Read-only queries shared by the CLI and the dashboard.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from bus.backend.connection import as_text
from bus.keys import Keys
from bus.runtime.recovery import WorkerInfo, parse_iso_time, registered_workers

RESQUE_DEAD_AFTER = 300.0
"""Resque prunes a worker whose heartbeat is older than this (its PRUNE_INTERVAL)."""


@dataclass(frozen=True, slots=True)
class QueueStat:
    name: str
    pending: int
    in_flight: int
    retrying: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class WorkerStat(WorkerInfo):
    """A registered worker and what ``bus workers`` adds: alive or not, in-flight jobs, counters."""

    alive: bool
    in_flight: int
    processed: int
    failed: int

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["queues"] = list(self.queues)
        return data


def queue_names(redis: Any, keys: Keys, workers: list[WorkerInfo] | None = None) -> list[str]:
    names = {as_text(q) for q in redis.smembers(keys.queues)}
    for info in workers or []:
        names.update(info.queues)
    return sorted(names)


def queue_stats(redis: Any, keys: Keys) -> list[QueueStat]:
    workers = registered_workers(redis, keys)
    names = queue_names(redis, keys, workers)
    pipe = redis.pipeline(transaction=False)
    for name in names:
        pipe.llen(keys.queue(name))
        pipe.zcard(keys.retries(name))
    for info in workers:
        for name in info.queues:
            pipe.llen(keys.inflight(name, info.id))
    replies = pipe.execute()
    in_flight: dict[str, int] = dict.fromkeys(names, 0)
    offset = 2 * len(names)
    for info in workers:
        for name in info.queues:
            in_flight[name] = in_flight.get(name, 0) + int(replies[offset])
            offset += 1
    return [
        QueueStat(name, int(replies[2 * i]), in_flight.get(name, 0), int(replies[2 * i + 1]))
        for i, name in enumerate(names)
    ]


def worker_stats(
    redis: Any, keys: Keys, *, dead_after: float, hostname: str, now: float | None = None
) -> list[WorkerStat]:
    workers = registered_workers(redis, keys)
    pipe = redis.pipeline(transaction=False)
    for info in workers:
        for name in info.queues:
            pipe.llen(keys.inflight(name, info.id))
        pipe.get(keys.stat_processed_of(info.id))
        pipe.get(keys.stat_failed_of(info.id))
    replies = iter(pipe.execute())
    now = time.time() if now is None else now
    out = []
    for info in sorted(workers, key=lambda w: w.id):
        in_flight = sum(int(next(replies)) for _ in info.queues)
        processed, failed = counter(next(replies)), counter(next(replies))
        alive = not info.is_dead(now=now, dead_after=dead_after, hostname=hostname)
        out.append(WorkerStat(**info.values(), alive=alive, in_flight=in_flight, processed=processed, failed=failed))
    return out


@dataclass(frozen=True, slots=True)
class WorkerActivity:
    """What a worker is running, as stored: Resque's ``worker:<id>`` mark (a Ruby or Node worker
    sets it; ours may) and the first jobs of each of its in-flight lists, raw."""

    marked: bytes | None
    in_flight: tuple[bytes, ...]


def worker_activity(
    redis: Any, keys: Keys, workers: Sequence[WorkerInfo], *, per_queue: int = 3
) -> dict[str, WorkerActivity]:
    """Each worker's current jobs by id, in one pipelined round trip."""
    pipe = redis.pipeline(transaction=False)
    for info in workers:
        pipe.get(keys.worker(info.id))
        for queue in info.queues:
            pipe.lrange(keys.inflight(queue, info.id), 0, per_queue - 1)
    replies = iter(pipe.execute())
    out = {}
    for info in workers:
        marked = next(replies)
        out[info.id] = WorkerActivity(marked, tuple(raw for _ in info.queues for raw in next(replies)))
    return out


@dataclass(frozen=True, slots=True)
class ResqueWorker:
    """A worker registered the Resque way only (Ruby, Node) on the same Redis, and its
    ``worker:<id>`` mark (``{"queue":..., "run_at":..., "payload":{job}}``), raw."""

    stat: WorkerStat
    marked: bytes | None


def resque_workers(redis: Any, keys: Keys, known: set[str], *, now: float) -> list[ResqueWorker]:
    """Workers in Resque's ``workers`` set that are not in ``known``; alive while their Resque
    heartbeat is younger than :data:`RESQUE_DEAD_AFTER`."""
    ids = sorted(i for i in (as_text(m) for m in redis.smembers(keys.workers)) if i not in known)
    if not ids:
        return []
    pipe = redis.pipeline(transaction=False)
    for worker_id in ids:
        pipe.hget(keys.workers_heartbeat, worker_id)
        pipe.get(keys.worker(worker_id))
        pipe.get(keys.stat_processed_of(worker_id))
        pipe.get(keys.stat_failed_of(worker_id))
    replies = iter(pipe.execute())
    out = []
    for worker_id in ids:
        beat, marked, processed, failed = (next(replies) for _ in range(4))
        heartbeat = parse_iso_time(beat)
        host, _, rest = worker_id.partition(":")
        pid, _, queues = rest.partition(":")
        stat = WorkerStat(
            id=worker_id,
            host=host,
            pid=counter(pid),
            queues=tuple(q for q in queues.split(",") if q),
            started_at=0.0,
            heartbeat=heartbeat,
            alive=heartbeat is not None and now - heartbeat <= RESQUE_DEAD_AFTER,
            in_flight=0,
            processed=counter(processed),
            failed=counter(failed),
        )
        out.append(ResqueWorker(stat, marked))
    return out


def totals(redis: Any, keys: Keys) -> dict[str, int]:
    """Resque's processed/failed counters and the length of the failed list."""
    pipe = redis.pipeline(transaction=False)
    pipe.get(keys.stat_processed)
    pipe.get(keys.stat_failed)
    pipe.llen(keys.failed)
    processed, failed, entries = pipe.execute()
    return {"processed": counter(processed), "failed": counter(failed), "failed_entries": int(entries)}


def counter(raw: bytes | str | None) -> int:
    """A counter any client of this Redis may have written: a non-number reads as 0, never a crash."""
    text = as_text(raw or b"0")
    return int(text) if text.isascii() and text.isdigit() and len(text) < 20 else 0


@dataclass(frozen=True, slots=True)
class MinuteCount:
    minute: int
    processed: int
    failed: int


def throughput(
    redis: Any, keys: Keys, queues: list[str], *, now: float, minutes: int = 60
) -> dict[str, list[MinuteCount]]:
    """Jobs processed and failed per minute over the last ``minutes``, for each queue."""
    last = int(now // 60)
    first = last - minutes + 1
    hours = sorted({m // 60 for m in range(first, last + 1)})
    pipe = redis.pipeline(transaction=False)
    for queue in queues:
        for kind in ("processed", "failed"):
            for hour in hours:
                pipe.hgetall(keys.throughput(queue, kind, hour))
    replies = iter(pipe.execute())
    out: dict[str, list[MinuteCount]] = {}
    for queue in queues:
        counts: dict[str, dict[int, int]] = {}
        for kind in ("processed", "failed"):
            merged: dict[int, int] = {}
            for _ in hours:
                for minute, count in next(replies).items():
                    at = counter(minute)
                    merged[at] = merged.get(at, 0) + counter(count)
            counts[kind] = merged
        out[queue] = [
            MinuteCount(m, counts["processed"].get(m, 0), counts["failed"].get(m, 0)) for m in range(first, last + 1)
        ]
    return out
