"""The Failed page's view helpers: a failure's reference, and the counts cached while pages poll."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bus.stores import failure_search
from bus.stores.failure_search import Breakdown, FailureFilter, FailurePage, breakdown
from bus.stores.failures import Failure, Failures
from bus.stores.queues import JobRef


def ref_of(f: Failure) -> str:
    return str(JobRef.of(f.index, f.raw))


def refs_of(values: Sequence[str]) -> list[JobRef]:
    """The well-formed references among those a form sent (anything else is ignored)."""
    return [ref for ref in (JobRef.parse(v) for v in values) if ref is not None]


@dataclass
class BreakdownCache:
    """Reuses a breakdown for a while as long as the list has not changed (pages poll every 2 s),
    and for a live refresh ``live_ttl`` even if it has."""

    ttl: float = 60.0
    live_ttl: float = 5.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _entry: tuple[Any, float, Breakdown] | None = None

    def get(self, failures: Failures, *, live: bool = False) -> Breakdown:
        with self._lock:
            entry = self._entry
        if entry and live and time.monotonic() - entry[1] < self.live_ttl:
            return entry[2]
        version = failures.version()
        if entry and entry[0] == version and time.monotonic() - entry[1] < self.ttl:
            return entry[2]
        result = breakdown(failures)
        with self._lock:
            self._entry = (version, time.monotonic(), result)
        return result


@dataclass
class FilteredPages:
    """Pages of a filtered list, kept while pages poll: a filter scans the whole list (hundreds of
    milliseconds at 10k failures), and every open tab asks again every 2 s.

    A page is reused while the list has not changed (up to ``ttl``); a live refresh reuses it for
    ``live_ttl`` even if it has, without asking Redis anything. A page drawn after an action
    (not a live refresh) always sees the list as it is.
    """

    ttl: float = 60.0
    live_ttl: float = 5.0
    size: int = 64
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _pages: dict[tuple[Any, ...], tuple[Any, float, FailurePage]] = field(default_factory=dict)

    def get(
        self, failures: Failures, flt: FailureFilter, offset: int, count: int, *, newest_first: bool, live: bool
    ) -> FailurePage:
        if not flt.active:  # one LRANGE: nothing to save
            return failure_search.page(failures, flt, offset, count, newest_first=newest_first)
        key = (flt, offset, count, newest_first)
        with self._lock:
            cached = self._pages.get(key)
        if cached and live and time.monotonic() - cached[1] < self.live_ttl:
            return cached[2]
        version = failures.version()
        if cached and cached[0] == version and time.monotonic() - cached[1] < self.ttl:
            return cached[2]
        result = failure_search.page(failures, flt, offset, count, newest_first=newest_first)
        with self._lock:
            self._pages[key] = (version, time.monotonic(), result)
            while len(self._pages) > self.size:
                self._pages.pop(next(iter(self._pages)))
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
