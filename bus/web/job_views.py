"""Jobs as the dashboard shows them: decoded for reading, and found again to remove them.

A page names a job by ``index:sha1`` (its position when the page was drawn and a digest
of its bytes). Workers take jobs from the head of a queue, so by the time someone
clicks, the job may have moved towards the head; :func:`locate` looks for it there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bus.errors import MalformedJob
from bus.pipeline.envelope import decode_job
from bus.stores.queues import JobRef


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
        return str(JobRef.of(self.index, self.raw))

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


def view_jobs(start: int, raws: list[bytes]) -> list[JobView]:
    """A page of jobs read from ``start``, decoded."""
    return [view_job(start + i, raw) for i, raw in enumerate(raws)]
