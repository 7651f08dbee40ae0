"""Jobs as the dashboard shows them: decoded for reading, and found again to remove them.

A page names a job by ``index:sha1`` (its position when the page was drawn and a digest
of its bytes). Workers take jobs from the head of a queue, so by the time someone
clicks, the job may have moved towards the head; :func:`locate` looks for it there.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from bus.errors import MalformedJob
from bus.pipeline.envelope import decode_job

SCAN_CHUNK = 1000


def digest(raw: bytes) -> str:
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()


@dataclass(frozen=True, slots=True)
class JobView:
    """One stored job decoded for display (``error`` says why it could not be)."""

    index: int
    raw: bytes
    klass: str = ""
    attributes: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ref(self) -> str:
        return f"{self.index}:{digest(self.raw)}"

    @property
    def text(self) -> str:
        return self.raw.decode("utf-8", "replace")

    def attr(self, name: str) -> str:
        value = self.attributes.get(name)
        return "" if value is None else str(value)

    @property
    def event_type(self) -> str:
        return self.attr("bus_event_type")

    @property
    def app(self) -> str:
        return self.attr("bus_rider_app_key")

    @property
    def sub_key(self) -> str:
        return self.attr("bus_rider_sub_key")

    @property
    def since(self) -> float | None:
        """When the job was put on its queue (driven, else published), if it says."""
        for name in ("bus_driven_at", "bus_published_at"):
            value = self.attributes.get(name)
            if isinstance(value, int | float) and not isinstance(value, bool):
                return float(value)
        return None

    @property
    def summary(self) -> str:
        """``app/subscription: event`` for a rider job, ``event`` for one being driven."""
        if self.error:
            return f"unreadable job ({self.error})"
        where = f"{self.app}/{self.sub_key}: " if self.app else ""
        return where + (self.event_type or self.klass)


def view_job(index: int, raw: bytes) -> JobView:
    try:
        job = decode_job(raw)
    except MalformedJob as exc:
        return JobView(index, raw, error=str(exc))
    return JobView(index, raw, job.klass, job.attributes, job.extra)


def parse_ref(value: str) -> tuple[int, str] | None:
    index, _, sha = value.partition(":")
    if not index.isdigit() or len(sha) != 40:
        return None
    return int(index), sha


def peek(redis: Any, key: str, start: int, count: int) -> list[JobView]:
    """``count`` jobs of a list from ``start`` (one LRANGE; never the whole list)."""
    if count <= 0:
        return []
    return [view_job(start + i, raw) for i, raw in enumerate(redis.lrange(key, start, start + count - 1))]


def locate(redis: Any, key: str, index: int, sha: str, *, scan_limit: int = 200_000) -> bytes | None:
    """The job named ``index:sha``: at ``index``, or nearer the head if jobs were taken since."""
    raw = redis.lindex(key, index)
    if raw is not None and digest(raw) == sha:
        return bytes(raw)
    start = 0
    end = min(index + 1, scan_limit)
    while start < end:
        chunk = redis.lrange(key, start, min(start + SCAN_CHUNK, end) - 1)
        for item in chunk:
            if digest(item) == sha:
                return bytes(item)
        if len(chunk) < SCAN_CHUNK:
            return None
        start += SCAN_CHUNK
    return None


def remove_job(redis: Any, key: str, ref: str) -> bool:
    """Remove one job named ``index:sha`` from a list; False if it is no longer there."""
    parsed = parse_ref(ref)
    if parsed is None:
        return False
    raw = locate(redis, key, *parsed)
    return raw is not None and bool(redis.lrem(key, 1, raw))


def clear_list(redis: Any, key: str) -> int:
    """Empty a queue in one step; how many jobs it held."""
    pipe = redis.pipeline(transaction=True)
    pipe.llen(key)
    pipe.delete(key)
    count, _ = pipe.execute()
    return int(count)
