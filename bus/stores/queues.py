"""The queues as lists of jobs, for those who read and tend them (the dashboard, the CLI).

A reader names a job by a :class:`JobRef`, ``index:sha`` (its position when it was read
and a digest of its bytes). Workers take jobs from the head of a queue, so by the time
someone acts, the job may have moved towards the head: :meth:`Queues.locate` looks for it
there. Every list of jobs here (a queue, an in-flight list, a delayed timestamp's list) is
read a page at a time, never whole.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from bus.backend.connection import as_text
from bus.keys import Keys

SCAN_CHUNK = 1000
MAX_INDEX = 2**62
"""Past any real list's length: a bigger index in a reference is refused, not sent to Redis."""


def digest(raw: bytes) -> str:
    """A job's digest, as references name it."""
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class JobRef:
    """``index:sha``: where a job was, and which job it is."""

    index: int
    sha: str

    @classmethod
    def parse(cls, value: str) -> JobRef | None:
        """A reference as pages and forms send it; None for anything else (unicode digits included)."""
        index, _, sha = value.partition(":")
        if not (index.isascii() and index.isdigit() and len(index) <= 19) or int(index) >= MAX_INDEX:
            return None
        if len(sha) != 40 or not all(c in "0123456789abcdef" for c in sha):
            return None
        return cls(int(index), sha)

    @classmethod
    def of(cls, index: int, raw: bytes) -> JobRef:
        return cls(index, digest(raw))

    def __str__(self) -> str:
        return f"{self.index}:{self.sha}"


def peek_list(redis: Any, key: str, start: int, count: int) -> list[bytes]:
    """``count`` entries of a list from ``start`` (one LRANGE; never the whole list)."""
    if count <= 0 or start < 0 or start >= MAX_INDEX:
        return []
    return [bytes(raw) for raw in redis.lrange(key, start, start + count - 1)]


def locate_in(redis: Any, key: str, ref: JobRef, *, scan_limit: int = 200_000) -> bytes | None:
    """The job ``ref`` names in the list ``key``: at its index, or nearer the head if jobs left since."""
    raw = redis.lindex(key, ref.index)
    if raw is not None and digest(raw) == ref.sha:
        return bytes(raw)
    start, end = 0, min(ref.index + 1, scan_limit)
    while start < end:
        chunk = redis.lrange(key, start, min(start + SCAN_CHUNK, end) - 1)
        for item in chunk:
            if digest(item) == ref.sha:
                return bytes(item)
        if len(chunk) < SCAN_CHUNK:
            return None
        start += SCAN_CHUNK
    return None


class Queues:
    """Reading and tending queues: depth, a page of jobs, in-flight and retrying jobs, removal."""

    def __init__(self, redis: Any, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    def names(self) -> list[str]:
        """Every queue in the ``queues`` set, sorted."""
        return sorted(as_text(name) for name in self.redis.smembers(self.keys.queues))

    def depth(self, name: str) -> int:
        return int(self.redis.llen(self.keys.queue(name)))

    def depths(self, names: list[str]) -> dict[str, int]:
        """The depth of each queue, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.llen(self.keys.queue(name))
        return dict(zip(names, (int(n) for n in pipe.execute()), strict=True))

    def known(self, name: str) -> bool:
        """Whether ``name`` is in the ``queues`` set."""
        return bool(self.redis.sismember(self.keys.queues, name))

    def peek(self, name: str, start: int, count: int) -> list[bytes]:
        """A page of a queue's jobs, head first."""
        return peek_list(self.redis, self.keys.queue(name), start, count)

    def heads(self, names: list[str]) -> dict[str, bytes]:
        """The next job of each queue that has one, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for name in names:
            pipe.lindex(self.keys.queue(name), 0)
        return {name: bytes(raw) for name, raw in zip(names, pipe.execute(), strict=True) if raw is not None}

    def in_flight(self, name: str, worker_id: str, count: int) -> list[bytes]:
        """The first jobs a worker holds in flight from a queue."""
        return peek_list(self.redis, self.keys.inflight(name, worker_id), 0, count)

    def retrying(self, name: str, count: int) -> tuple[int, list[tuple[bytes, float]]]:
        """How many of a queue's jobs wait to be retried, and the first ``count`` with when they are due."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(self.keys.retries(name))
        pipe.zrange(self.keys.retries(name), 0, count - 1, withscores=True)
        total, entries = pipe.execute()
        return int(total), [(bytes(raw), float(due)) for raw, due in entries]

    def locate(self, name: str, ref: JobRef) -> bytes | None:
        return locate_in(self.redis, self.keys.queue(name), ref)

    def remove(self, name: str, ref: JobRef) -> bool:
        """Remove one job from a queue; False if it is no longer there."""
        raw = self.locate(name, ref)
        return raw is not None and bool(self.redis.lrem(self.keys.queue(name), 1, raw))

    def clear(self, name: str) -> int:
        """Empty a queue in one step; how many jobs it held (in-flight and retrying ones stay)."""
        pipe = self.redis.pipeline(transaction=True)
        pipe.llen(self.keys.queue(name))
        pipe.delete(self.keys.queue(name))
        count, _ = pipe.execute()
        return int(count)
