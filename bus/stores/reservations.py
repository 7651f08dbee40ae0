"""Reliable queue steps: reserve into in-flight, requeue, retry promotion, batched outcomes.

Each script touches the keys of one queue only (the queue, its in-flight lists, retry
set and crash counts all share the queue's hash slot), so every step stays atomic on
Redis Cluster. Outcomes of a batch (acks, fan-out pushes, retries, failures, stats) are
written in one round trip: inside MULTI on a single server, so a batch is either fully
recorded or still in flight; in two ordered phases (writes, then acks) on a cluster.
"""

from __future__ import annotations

import hashlib
from collections import deque
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from bus.backend.connection import pipe_eval
from bus.keys import Keys
from bus.runtime.observations import Observations
from bus.runtime.tally import Tally

# KEYS: queue, inflight, crashes. ARGV: how many.
# Returns {suspect_count, job...}. A job that was in flight when a worker died (it has a
# crash count) is returned alone, so it runs in isolation and the next crash is its own.
RESERVE = """
local jobs = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #jobs == 0 then return {0} end
local suspect = 0
if redis.call('EXISTS', KEYS[3]) == 1 then
  for i = 1, #jobs do
    local count = redis.call('HGET', KEYS[3], redis.sha1hex(jobs[i]))
    if count then
      if i == 1 then
        jobs = {jobs[1]}
        suspect = tonumber(count)
      else
        local clean = {}
        for j = 1, i - 1 do clean[j] = jobs[j] end
        jobs = clean
      end
      break
    end
  end
end
redis.call('LTRIM', KEYS[1], #jobs, -1)
redis.call('RPUSH', KEYS[2], unpack(jobs))
table.insert(jobs, 1, suspect)
return jobs
"""

# KEYS: inflight, queue, crashes. ARGV: "1" to count a crash for every job moved.
# Moves every in-flight job back to the head of its queue, keeping their order.
REQUEUE = """
local jobs = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #jobs, 1, -1 do
  if ARGV[1] == '1' then redis.call('HINCRBY', KEYS[3], redis.sha1hex(jobs[i]), 1) end
  redis.call('LPUSH', KEYS[2], jobs[i])
end
redis.call('DEL', KEYS[1])
return #jobs
"""

# KEYS: inflight. ARGV: n, sha1 of the first and of the n-th job the worker expects there.
# Acknowledges the first n in-flight jobs by position (one command per queue and batch,
# instead of one LREM carrying each whole job back), unless the list is not what the
# worker left there (another worker requeued it): then -1, and the worker acks by value.
ACK_PREFIX = """
local n = tonumber(ARGV[1])
local first = redis.call('LINDEX', KEYS[1], 0)
local last = redis.call('LINDEX', KEYS[1], n - 1)
if first and last and redis.sha1hex(first) == ARGV[2] and redis.sha1hex(last) == ARGV[3] then
  redis.call('LTRIM', KEYS[1], n, -1)
  return n
end
return -1
"""

# KEYS: inflight, queue. ARGV: job. One job back to the head of its queue, if still in flight.
MOVE_BACK = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then redis.call('LPUSH', KEYS[2], ARGV[1]) return 1 end
return 0
"""

# KEYS: retries, queue. ARGV: now (epoch seconds), limit.
PROMOTE = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #due == 0 then return 0 end
redis.call('ZREM', KEYS[1], unpack(due))
redis.call('RPUSH', KEYS[2], unpack(due))
return #due
"""


THROUGHPUT_TTL = 2 * 3600


def job_digest(raw: bytes) -> str:
    """The field a job's crash count is stored under (what Lua's ``sha1hex`` computes)."""
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()


@dataclass(slots=True)
class Reserved:
    """A job taken into this worker's in-flight list."""

    queue: str
    raw: bytes
    crashes: int = 0


def parse_reserve(queue: str, reply: list[Any]) -> list[Reserved]:
    suspect = int(reply[0]) if reply else 0
    return [Reserved(queue, raw, suspect) for raw in reply[1:]]


@dataclass
class Outcomes:
    """Writes owed for finished jobs, flushed together with the next reserve."""

    acks: list[tuple[str, bytes]] = field(default_factory=list)
    pushes: dict[str, list[str]] = field(default_factory=dict)
    retries: list[tuple[str, str, float]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    crash_clears: list[tuple[str, bytes]] = field(default_factory=list)
    acked_writes: list[Callable[[Any], Any]] = field(default_factory=list)
    observed: Observations = field(default_factory=Observations)
    processed: Tally[str] = field(default_factory=Tally)
    failed: Tally[str] = field(default_factory=Tally)
    token: str = ""
    """Set when these outcomes are first sent in a MULTI, which stores it as applied."""

    def __bool__(self) -> bool:
        return bool(
            self.acks
            or self.pushes
            or self.retries
            or self.failures
            or self.crash_clears
            or self.acked_writes
            or self.observed
        )

    def finished(self, queue: str, raw: bytes, *, failed: bool = False) -> None:
        """A job's outcome is decided: release it and count it."""
        self.acks.append((queue, raw))
        self.processed[queue] += 1
        if failed:
            self.failed[queue] += 1

    def push(self, queue: str, job: str) -> None:
        self.pushes.setdefault(queue, []).append(job)

    def merge(self, other: Outcomes) -> None:
        self.acks += other.acks
        for queue, jobs in other.pushes.items():
            self.pushes.setdefault(queue, []).extend(jobs)
        self.retries += other.retries
        self.failures += other.failures
        self.crash_clears += other.crash_clears
        self.acked_writes += other.acked_writes
        self.observed.merge(other.observed)
        self.processed.add(other.processed)
        self.failed.add(other.failed)

    def write(
        self, pipe: Any, keys: Keys, worker_id: str, minute: int, trace_ttl: int = 600, *, scripts: bool = True
    ) -> None:
        """Queue the commands that record new work (fan-out, retries, failures, stats, traces)."""
        for queue, jobs in self.pushes.items():
            pipe.rpush(keys.queue(queue), *jobs)
        if self.pushes:
            pipe.sadd(keys.queues, *self.pushes)
        for queue, job, due in self.retries:
            pipe.zadd(keys.retries(queue), {job: due})
        for write in self.acked_writes:
            write(pipe)
        if self.failures:
            pipe.rpush(keys.failed, *self.failures)
            pipe.incrby(keys.stat_failed, len(self.failures))
            pipe.incrby(keys.stat_failed_of(worker_id), len(self.failures))
        total = sum(self.processed.values())
        if total:
            pipe.incrby(keys.stat_processed, total)
            pipe.incrby(keys.stat_processed_of(worker_id), total)
        for kind, counts in (("processed", self.processed), ("failed", self.failed)):
            for queue, count in counts.items():
                key = keys.throughput(queue, kind, minute // 60)
                pipe.hincrby(key, str(minute), count)
                pipe.expire(key, THROUGHPUT_TTL)
        self.observed.write(pipe, keys, minute, trace_ttl, scripts=scripts)


@dataclass(slots=True)
class AckCheck:
    """A positional ack in a pipeline: where its reply is, and the jobs it stands for."""

    index: int
    queue: str
    raws: list[bytes]


class Inflight:
    """A worker's record of its in-flight lists, in reservation order, to ack by position."""

    def __init__(self, keys: Keys, worker_id: str, queues: list[str]) -> None:
        self.keys = keys
        self.worker_id = worker_id
        self.lists: dict[str, deque[bytes]] = {q: deque() for q in queues}

    def reserved(self, queue: str, raws: Iterable[bytes]) -> None:
        self.lists[queue].extend(raws)

    def forget(self, queue: str, raw: bytes) -> None:
        with suppress(ValueError):
            self.lists[queue].remove(raw)

    def queue_acks(self, pipe: Any, outcomes: Outcomes) -> list[AckCheck]:
        """Queue the commands releasing finished jobs; the positional ones are returned to check."""
        by_queue: dict[str, list[bytes]] = {}
        for queue, raw in outcomes.acks:
            by_queue.setdefault(queue, []).append(raw)
        checks = []
        for queue, raws in by_queue.items():
            inflight = self.keys.inflight(queue, self.worker_id)
            mine = self.lists.get(queue)
            if mine is not None and len(raws) > 1 and _is_prefix(mine, raws):
                checks.append(AckCheck(len(pipe), queue, raws))
                first, last = job_digest(mine[0]), job_digest(mine[len(raws) - 1])
                pipe_eval(pipe, ACK_PREFIX, [inflight], len(raws), first, last)
            else:
                for raw in raws:
                    pipe.lrem(inflight, 1, raw)
        for queue, raw in outcomes.crash_clears:
            pipe.hdel(self.keys.crashes(queue), job_digest(raw))
        return checks

    def settle(self, redis: Any, results: list[Any], checks: list[AckCheck], outcomes: Outcomes) -> None:
        """After the pipeline ran: ack by value where position did not hold; update the record."""
        positional = {id(raw) for check in checks for raw in check.raws}
        fallback = [c for c in checks if results[c.index] != len(c.raws)]
        if fallback:
            pipe = redis.pipeline(transaction=False)
            for check in fallback:
                for raw in check.raws:
                    pipe.lrem(self.keys.inflight(check.queue, self.worker_id), 1, raw)
            pipe.execute()
        for check in checks:
            mine = self.lists[check.queue]
            for _ in check.raws:
                if mine:
                    mine.popleft()
        for queue, raw in outcomes.acks:
            if id(raw) not in positional and queue in self.lists:
                _remove_identical(self.lists[queue], raw)


def _is_prefix(mine: deque[bytes], raws: list[bytes]) -> bool:
    """Are ``raws`` exactly the first jobs in flight (in any order: drives finish after rides)?"""
    if len(mine) < len(raws):
        return False
    head = list(islice(mine, len(raws)))
    return head == raws or {id(x) for x in head} == {id(x) for x in raws}


def _remove_identical(items: deque[bytes], raw: bytes) -> None:
    for i, item in enumerate(items):
        if item is raw:
            del items[i]
            return
    with suppress(ValueError):
        items.remove(raw)
