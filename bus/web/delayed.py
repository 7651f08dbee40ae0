"""Reading and removing delayed jobs in resque-scheduler's layout, for the Delayed page.

``delayed_queue_schedule`` is a sorted set of timestamps; ``delayed:<ts>`` lists the jobs
due then; ``timestamps:<job>`` holds ``delayed:<ts>`` for every list a job is in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bus.keys import Keys
from bus.stores.delayed import Delayed, DelayedEntry
from bus.web.job_views import JobView, locate, parse_ref, peek, view_job

OVERDUE_AFTER = 60


@dataclass(frozen=True, slots=True)
class DelayedSummary:
    """How much is scheduled; ``jobs`` is None when there are too many timestamps to count."""

    timestamps: int
    jobs: int | None
    overdue: int
    next_due: int | None


@dataclass(frozen=True, slots=True)
class DelayedSlot:
    """One timestamp of the schedule: how many jobs are due then, and the first few."""

    timestamp: int
    count: int
    jobs: list[JobView]


def summary(redis: Any, keys: Keys, now: float, *, max_timestamps: int = 10_000) -> DelayedSummary:
    """Counts for the overview: timestamps, jobs (counted in chunks, capped), overdue timestamps."""
    pipe = redis.pipeline(transaction=False)
    pipe.zcard(keys.delayed_queue_schedule)
    pipe.zcount(keys.delayed_queue_schedule, "-inf", now - OVERDUE_AFTER)
    pipe.zrange(keys.delayed_queue_schedule, 0, 0, withscores=True)
    timestamps, overdue, first = pipe.execute()
    jobs: int | None = None
    if timestamps <= max_timestamps:
        jobs = 0
        for start in range(0, int(timestamps), 1000):
            members = redis.zrange(keys.delayed_queue_schedule, start, start + 999)
            pipe = redis.pipeline(transaction=False)
            for member in members:
                pipe.llen(keys.delayed(int(float(member))))
            jobs += sum(int(n) for n in pipe.execute())
    return DelayedSummary(int(timestamps), jobs, int(overdue), int(first[0][1]) if first else None)


def slots(redis: Any, keys: Keys, start: int, count: int, *, per_slot: int = 10) -> list[DelayedSlot]:
    """``count`` timestamps of the schedule from ``start``, earliest first, with their first jobs."""
    if count <= 0:
        return []
    entries = redis.zrange(keys.delayed_queue_schedule, start, start + count - 1, withscores=True)
    stamps = [int(score) for _, score in entries]
    pipe = redis.pipeline(transaction=False)
    for ts in stamps:
        pipe.llen(keys.delayed(ts))
        pipe.lrange(keys.delayed(ts), 0, per_slot - 1)
    replies = pipe.execute()
    out = []
    for i, ts in enumerate(stamps):
        raws = replies[2 * i + 1]
        out.append(DelayedSlot(ts, int(replies[2 * i]), [view_job(j, raw) for j, raw in enumerate(raws)]))
    return out


def slot_jobs(redis: Any, keys: Keys, timestamp: int, start: int, count: int) -> tuple[int, list[JobView]]:
    """One timestamp's jobs, a page at a time: (how many in all, this page)."""
    return int(redis.llen(keys.delayed(timestamp))), peek(redis, keys.delayed(timestamp), start, count)


def remove(redis: Any, keys: Keys, timestamp: int, ref: str) -> bool:
    """Unschedule one job named ``index:sha`` at ``timestamp``; False if it is gone."""
    parsed = parse_ref(ref)
    if parsed is None:
        return False
    raw = locate(redis, keys.delayed(timestamp), *parsed)
    if raw is None:
        return False
    return Delayed(redis, keys).remove(DelayedEntry(timestamp, raw))
