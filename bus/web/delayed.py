"""The Delayed page's view of a timestamp: its jobs decoded (the schedule is read by ``bus.stores.delayed``)."""

from __future__ import annotations

from dataclasses import dataclass

from bus.stores.delayed import Slot
from bus.web.job_views import JobView, view_jobs


@dataclass(frozen=True, slots=True)
class DelayedSlot:
    """One timestamp of the schedule: how many jobs are due then, and the ones shown."""

    timestamp: int
    count: int
    jobs: list[JobView]

    @classmethod
    def of(cls, slot: Slot, start: int = 0) -> DelayedSlot:
        return cls(slot.timestamp, slot.count, view_jobs(start, slot.jobs))

    @property
    def event_types(self) -> list[str]:
        """The event types among the jobs shown, each once, in order."""
        return list(dict.fromkeys(job.event_type or job.summary for job in self.jobs))
