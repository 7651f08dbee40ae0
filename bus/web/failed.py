"""The Failed page's view helpers: a failure's reference, and the counts cached while pages poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bus.stores.failure_search import Breakdown, FailureFilter, breakdown
from bus.stores.failures import Failure, Failures
from bus.stores.queues import JobRef


def ref_of(f: Failure) -> str:
    return str(JobRef.of(f.index, f.raw))


def refs_of(values: Sequence[str]) -> list[JobRef]:
    """The well-formed references among those a form sent (anything else is ignored)."""
    return [ref for ref in (JobRef.parse(v) for v in values) if ref is not None]


@dataclass
class BreakdownCache:
    """Reuses a breakdown for a while as long as the list has not changed (pages poll every 2 s)."""

    ttl: float = 60.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _entry: tuple[Any, float, Breakdown] | None = None

    def get(self, failures: Failures) -> Breakdown:
        version = failures.version()
        with self._lock:
            if self._entry and self._entry[0] == version and time.monotonic() - self._entry[1] < self.ttl:
                return self._entry[2]
        result = breakdown(failures)
        with self._lock:
            self._entry = (version, time.monotonic(), result)
        return result


def act_on_matching(failures: Failures, flt: FailureFilter, action: str) -> tuple[int, int]:
    """Retry or remove every failure matching ``flt`` (all of them: a clear, without a filter)."""
    if action == "remove" and not flt.active:
        return failures.clear(), 0
    return failures.act_on_each(flt.matches, action)


def act_on_selection(failures: Failures, refs: Sequence[JobRef], action: str) -> tuple[int, int]:
    entries = failures.select(refs)
    done = failures.retry_many(entries) if action == "retry" else failures.remove_many(entries)
    return done, len(refs) - done
