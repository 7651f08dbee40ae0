"""Delayed events in resque-scheduler's layout: schedule them, list them, remove them, move them when due.

An event published for later is a job ``{"class":"QueueBus::Worker","args":[...],"queue":"bus_incoming"}``
in ``delayed:<ts>``, with ``<ts>`` in the ``delayed_queue_schedule`` sorted set and
``timestamps:<job>`` naming the list it is in: exactly what Ruby's ``enqueue_at_with_queue``
writes, so Ruby's resque-scheduler delivers our events and we deliver theirs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bus.backend.connection import is_cluster
from bus.errors import InvalidEvent
from bus.keys import INCOMING_QUEUE, Keys
from bus.pipeline.envelope import PUBLISHER_PROXY, WORKER_CLASS, bus_hash, dumps, encode_attributes
from bus.safejson import read_json
from bus.stores.queues import JobRef, locate_in, peek_list

# KEYS: schedule, queues, failed, stat:failed.
# ARGV: now ("" = the server's TIME), key prefix, max items, failure entry head and tail.
# Moves up to ARGV[3] due items of the earliest due timestamp to their queues, as
# resque-scheduler does, but in one atomic step: racing schedulers never deliver an item
# twice, and a scheduler killed mid-way leaves each item either moved or still delayed.
# An item that is not a job (bad JSON, no class or queue) goes to failed with the reason.
MOVE_DUE = """
local now = ARGV[1]
if now == '' then now = redis.call('TIME')[1] end
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, 1)
if #due == 0 then return {0, 0, 0} end
local ts = due[1]
local list = ARGV[2] .. 'delayed:' .. ts
local moved, bad = 0, 0
for i = 1, tonumber(ARGV[3]) do
  local item = redis.call('LPOP', list)
  if not item then break end
  redis.call('SREM', ARGV[2] .. 'timestamps:' .. item, 'delayed:' .. ts)
  local ok, job = pcall(cjson.decode, item)
  local queue = nil
  if ok and type(job) == 'table' and type(job['class']) == 'string' and type(job['queue']) == 'string'
     and job['queue'] ~= '' then
    queue = job['queue']
  end
  if queue then
    local suffix = ',"queue":' .. cjson.encode(queue) .. '}'
    local out
    if string.sub(item, -#suffix) == suffix then
      out = string.sub(item, 1, #item - #suffix) .. '}'
    else
      job['queue'] = nil
      out = cjson.encode(job)
    end
    redis.call('SADD', KEYS[2], queue)
    redis.call('RPUSH', ARGV[2] .. 'queue:' .. queue, out)
    moved = moved + 1
  else
    redis.call('RPUSH', KEYS[3], ARGV[4] .. '{"class":null,"args":[' .. cjson.encode(item) .. ']}' .. ARGV[5])
    redis.call('INCR', KEYS[4])
    bad = bad + 1
  end
end
if redis.call('LLEN', list) == 0 then
  redis.call('ZREM', KEYS[1], ts)
end
return {moved, bad, tonumber(ts)}
"""

# KEYS: schedule, delayed:<ts>, timestamps:<job>. ARGV: job, ts.
# One copy of the job leaves the list; the job forgets the list only if no copy is left,
# and the timestamp leaves the schedule once its list is empty.
REMOVE = """
local removed = redis.call('LREM', KEYS[2], 1, ARGV[1])
if removed == 0 then return 0 end
if not redis.call('LPOS', KEYS[2], ARGV[1]) then
  redis.call('SREM', KEYS[3], 'delayed:' .. ARGV[2])
end
if redis.call('LLEN', KEYS[2]) == 0 then redis.call('ZREM', KEYS[1], ARGV[2]) end
return removed
"""


OVERDUE_AFTER = 60
"""A timestamp this many seconds past due means no scheduler is running."""


@dataclass(frozen=True, slots=True)
class Summary:
    """How much is scheduled; ``jobs`` is None when there are too many timestamps to count."""

    timestamps: int
    jobs: int | None
    overdue: int
    next_due: int | None


@dataclass(frozen=True, slots=True)
class Slot:
    """One timestamp of the schedule: how many jobs are due then, and some of them."""

    timestamp: int
    count: int
    jobs: list[bytes]


def _timestamp(value: Any) -> int | None:
    """A schedule member or score as a timestamp; None for what any client may have written
    instead (a word, a float too large): such an entry is passed over, never a crash."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) and abs(number) < 2**53 else None


def drop_empty_timestamp(redis: Any, keys: Keys, ts: int) -> None:
    """Take ``ts`` off the schedule if nothing is left to deliver for it (cluster path).

    Checked again after the removal: a job scheduled for ``ts`` meanwhile puts it back.
    """
    if redis.llen(keys.delayed(ts)) or redis.hlen(keys.delayed_movers(ts)):
        return
    redis.zrem(keys.delayed_queue_schedule, str(ts))
    if redis.llen(keys.delayed(ts)):
        redis.zadd(keys.delayed_queue_schedule, {str(ts): ts})


def epoch_of(when: datetime | float | int) -> int:
    """Whole epoch seconds of an aware datetime or a number; naive datetimes are refused."""
    if isinstance(when, datetime):
        if when.tzinfo is None or when.utcoffset() is None:
            raise InvalidEvent(
                "naive datetime: give a timezone-aware datetime (e.g. datetime.now(UTC)) or epoch seconds"
            )
        return math.floor(when.timestamp())
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        raise InvalidEvent(f"publish time must be an aware datetime or epoch seconds, got {when!r}")
    return math.floor(when)


def delayed_event(event: dict[str, Any], timestamp: int, attributes: dict[str, Any]) -> dict[str, Any]:
    """queue-bus's ``publish_at``: delayed-until (unless given), no published-at yet, Publisher proxy."""
    delayed = {k: v for k, v in event.items() if k != "bus_class_proxy"}
    if delayed.get("bus_delayed_until") is None:
        delayed["bus_delayed_until"] = timestamp
    if "bus_published_at" not in attributes:
        delayed.pop("bus_published_at", None)
    delayed["bus_class_proxy"] = PUBLISHER_PROXY
    return delayed


def delayed_job(event: dict[str, Any], queue: str = INCOMING_QUEUE) -> str:
    """The job as resque-scheduler stores it: class, args, then queue."""
    return (
        '{"class":"' + WORKER_CLASS + '","args":[' + dumps(encode_attributes(event)) + '],"queue":' + dumps(queue) + "}"
    )


@dataclass(slots=True)
class DelayedEntry:
    """One scheduled job, as ``bus delayed list`` and the dashboard show it."""

    timestamp: int
    raw: bytes

    @property
    def job(self) -> dict[str, Any]:
        try:
            value = read_json(self.raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    @property
    def attributes(self) -> dict[str, Any]:
        return bus_hash(self.job)

    @property
    def bus_id(self) -> str:
        return str(self.attributes.get("bus_id") or "")

    @property
    def event_type(self) -> str:
        return str(self.attributes.get("bus_event_type") or "")

    @property
    def queue(self) -> str:
        return str(self.job.get("queue") or "")

    def to_json(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "bus_id": self.bus_id,
            "event_type": self.event_type,
            "queue": self.queue,
            "attributes": self.attributes,
        }


class Delayed:
    """The delayed schedule: write, read, remove."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def schedule(self, timestamp: int, job: str) -> None:
        """Store a job for ``timestamp``; the schedule entry is written last, so a reader sees it whole."""
        cluster = is_cluster(self.redis)
        pipe = self.redis.pipeline(transaction=not cluster)
        pipe.rpush(self.keys.delayed(timestamp), job)
        pipe.sadd(self.keys.timestamps(job), f"delayed:{timestamp}")
        if cluster:  # no MULTI across slots: make the job findable only once it is stored
            pipe.execute()
            pipe = self.redis.pipeline(transaction=False)
        pipe.zadd(self.keys.delayed_queue_schedule, {str(timestamp): timestamp})
        pipe.execute()

    def count(self) -> int:
        """How many jobs are scheduled (sums every timestamp's list)."""
        pipe = self.redis.pipeline(transaction=False)
        for ts in self.timestamps():
            pipe.llen(self.keys.delayed(ts))
        return sum(int(n) for n in pipe.execute())

    def summary(self, now: float, *, max_timestamps: int = 10_000) -> Summary:
        """Counts for the overview: timestamps, jobs (counted in chunks; None past ``max_timestamps``
        timestamps), overdue timestamps, the next one due."""
        key = self.keys.delayed_queue_schedule
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(key)
        pipe.zcount(key, "-inf", now - OVERDUE_AFTER)
        pipe.zrange(key, 0, 0, withscores=True)
        timestamps, overdue, first = pipe.execute()
        jobs: int | None = None
        if timestamps <= max_timestamps:
            jobs = 0
            for start in range(0, int(timestamps), 1000):
                pipe = self.redis.pipeline(transaction=False)
                for ts in self.timestamps(start, 1000):
                    pipe.llen(self.keys.delayed(ts))
                jobs += sum(int(n) for n in pipe.execute())
        return Summary(int(timestamps), jobs, int(overdue), _timestamp(first[0][1]) if first else None)

    def slots(self, start: int, count: int, *, per_slot: int = 10) -> list[Slot]:
        """``count`` timestamps of the schedule from ``start``, earliest first, with their first jobs."""
        if count <= 0 or start < 0:
            return []
        stamps = self.timestamps(start, count)
        pipe = self.redis.pipeline(transaction=False)
        for ts in stamps:
            pipe.llen(self.keys.delayed(ts))
            pipe.lrange(self.keys.delayed(ts), 0, per_slot - 1)
        replies = pipe.execute()
        return [
            Slot(ts, int(replies[2 * i]), [bytes(raw) for raw in replies[2 * i + 1]]) for i, ts in enumerate(stamps)
        ]

    def slot(self, timestamp: int, start: int, count: int) -> Slot:
        """One timestamp's jobs, a page at a time (``count`` says how many in all)."""
        key = self.keys.delayed(timestamp)
        return Slot(timestamp, int(self.redis.llen(key)), peek_list(self.redis, key, start, count))

    def remove_ref(self, timestamp: int, ref: JobRef) -> bool:
        """Unschedule the job ``ref`` names at ``timestamp``; False if it is gone."""
        raw = locate_in(self.redis, self.keys.delayed(timestamp), ref)
        return raw is not None and self.remove(DelayedEntry(timestamp, raw))

    def timestamps(self, start: int = 0, count: int = -1) -> list[int]:
        stop = -1 if count < 0 else start + count - 1
        found = (_timestamp(ts) for ts in self.redis.zrange(self.keys.delayed_queue_schedule, start, stop))
        return [ts for ts in found if ts is not None]

    def entries(self, limit: int | None = None) -> Iterator[DelayedEntry]:
        """Scheduled jobs, earliest first."""
        yielded = 0
        for ts in self.timestamps():
            for raw in self.redis.lrange(self.keys.delayed(ts), 0, -1):
                if limit is not None and yielded >= limit:
                    return
                yielded += 1
                yield DelayedEntry(ts, raw)

    def find(self, bus_id: str) -> DelayedEntry | None:
        return next((e for e in self.entries() if e.bus_id == bus_id), None)

    def remove(self, entry: DelayedEntry) -> bool:
        """Unschedule one job; False if it was already gone (delivered or removed)."""
        if is_cluster(self.redis):
            return self._remove_across_slots(entry)
        return bool(
            self.redis.eval(
                REMOVE,
                3,
                self.keys.delayed_queue_schedule,
                self.keys.delayed(entry.timestamp),
                self.keys.timestamps(entry.raw.decode("utf-8", "replace")),
                entry.raw,
                str(entry.timestamp),
            )
        )

    def _remove_across_slots(self, entry: DelayedEntry) -> bool:
        """Cluster: each key on its own; a timestamp emptied meanwhile is put back if refilled."""
        key, ts = self.keys.delayed(entry.timestamp), entry.timestamp
        if not self.redis.lrem(key, 1, entry.raw):
            return False
        if self.redis.lpos(key, entry.raw) is None:
            self.redis.srem(self.keys.timestamps(entry.raw.decode("utf-8", "replace")), f"delayed:{ts}")
        drop_empty_timestamp(self.redis, self.keys, ts)
        return True

    def clear(self) -> int:
        """Unschedule everything (resque-scheduler's ``reset_delayed_queue``); jobs removed."""
        removed = 0
        for entry in list(self.entries()):
            removed += int(self.remove(entry))
        return removed
