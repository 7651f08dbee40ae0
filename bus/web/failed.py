"""The failed list as the Failed page reads it: filter, page, count, find one entry.

Without a filter a page is one LRANGE. With one, the list is scanned in chunks (newest
first) keeping only the page being shown, up to ``SCAN_LIMIT`` entries.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from bus.pipeline.envelope import dumps
from bus.safejson import read_json
from bus.stores.failures import Failure, Failures
from bus.web.job_views import digest, parse_ref

SCAN_CHUNK = 1000
SCAN_LIMIT = 200_000


@dataclass(frozen=True, slots=True)
class FailureFilter:
    """Which failures to show or act on; empty fields match everything."""

    queue: str = ""
    exception: str = ""
    app: str = ""
    text: str = ""

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> FailureFilter:
        return cls(*(str(params.get(name) or "").strip()[:200] for name in ("queue", "exception", "app", "q")))

    @property
    def active(self) -> bool:
        return bool(self.queue or self.exception or self.app or self.text)

    def params(self) -> dict[str, str]:
        given = {"queue": self.queue, "exception": self.exception, "app": self.app, "q": self.text}
        return {k: v for k, v in given.items() if v}

    def matches(self, f: Failure) -> bool:
        if (self.queue and f.queue != self.queue) or (self.exception and f.exception != self.exception):
            return False
        if self.app and f.app_key != self.app:
            return False
        return not self.text or self.text.lower() in _haystack(f).lower()


@dataclass(slots=True)
class FailurePage:
    total: int
    """Entries in the whole list."""
    matched: int
    """Entries matching the filter (among the first ``scanned`` when ``truncated``)."""
    entries: list[Failure]
    scanned: int
    truncated: bool = False


def ref_of(f: Failure) -> str:
    return f"{f.index}:{digest(f.raw)}"


def scan(failures: Failures, *, newest_first: bool = True, limit: int = SCAN_LIMIT) -> Iterator[Failure]:
    """Entries a chunk at a time, never the whole list at once."""
    total = failures.count()
    seen = 0
    if not newest_first:
        for f in failures.iterate(SCAN_CHUNK):
            if seen >= limit:
                return
            seen += 1
            yield f
        return
    for end in range(total, 0, -SCAN_CHUNK):
        start = max(0, end - SCAN_CHUNK)
        for f in reversed(failures.list(start, end - start)):
            if seen >= limit:
                return
            seen += 1
            yield f


def page(failures: Failures, flt: FailureFilter, offset: int, count: int, *, newest_first: bool = True) -> FailurePage:
    """``count`` entries from ``offset`` in display order, filtered."""
    total = failures.count()
    if not flt.active:
        if newest_first:
            first = max(0, total - offset - count)
            entries = list(reversed(failures.list(first, max(0, total - offset - first))))
        else:
            entries = failures.list(offset, count)
        return FailurePage(total, total, entries, len(entries))
    matched = scanned = 0
    entries = []
    for f in scan(failures, newest_first=newest_first):
        scanned += 1
        if flt.matches(f):
            if offset <= matched < offset + count:
                entries.append(f)
            matched += 1
    return FailurePage(total, matched, entries, scanned, truncated=scanned >= SCAN_LIMIT)


@dataclass(frozen=True, slots=True)
class Breakdown:
    """Counts of the failed list by exception, app and queue (from a chunked scan)."""

    exceptions: list[tuple[str, int]]
    apps: list[tuple[str, int]]
    queues: list[tuple[str, int]]
    scanned: int
    truncated: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def breakdown(failures: Failures, *, limit: int = SCAN_LIMIT) -> Breakdown:
    exceptions: Counter[str] = Counter()
    apps: Counter[str] = Counter()
    queues: Counter[str] = Counter()
    scanned = 0
    for f in scan(failures, newest_first=False, limit=limit):
        scanned += 1
        exceptions[f.exception or "(none)"] += 1
        apps[f.app_key or "(none)"] += 1
        queues[f.queue or "(none)"] += 1
    return Breakdown(
        exceptions.most_common(), apps.most_common(), queues.most_common(), scanned, truncated=scanned >= limit
    )


@dataclass
class BreakdownCache:
    """Reuses a breakdown for a few seconds while the list has not changed (pages poll)."""

    ttl: float = 60.0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _entry: tuple[Any, float, Breakdown] | None = None

    def get(self, failures: Failures) -> Breakdown:
        pipe = failures.redis.pipeline(transaction=False)
        pipe.llen(failures.keys.failed)
        pipe.lindex(failures.keys.failed, -1)
        pipe.lindex(failures.keys.failed, 0)
        version = tuple(pipe.execute())
        with self._lock:
            if self._entry and self._entry[0] == version and time.monotonic() - self._entry[1] < self.ttl:
                return self._entry[2]
        result = breakdown(failures)
        with self._lock:
            self._entry = (version, time.monotonic(), result)
        return result


def selected(failures: Failures, refs: Sequence[str]) -> list[Failure]:
    """The entries named ``index:sha`` that are still where the page saw them."""
    wanted = [p for p in (parse_ref(r) for r in refs) if p is not None]
    if not wanted:
        return []
    pipe = failures.redis.pipeline(transaction=False)
    for index, _ in wanted:
        pipe.lindex(failures.keys.failed, index)
    found = []
    for (index, sha), raw in zip(wanted, pipe.execute(), strict=True):
        if raw is not None and digest(raw) == sha:
            found.append(_failure(index, raw))
    return found


def find(failures: Failures, ref: str) -> Failure | None:
    """One entry by ``index:sha``; if it moved, searched for by its digest."""
    found = selected(failures, [ref])
    if found:
        return found[0]
    parsed = parse_ref(ref)
    if parsed is None:
        return None
    return next((f for f in scan(failures, newest_first=False) if digest(f.raw) == parsed[1]), None)


def _haystack(f: Failure) -> str:
    """What a text search looks in: message, exception, queue, backtrace and the event, decoded."""
    backtrace = f.data.get("backtrace")
    lines = backtrace if isinstance(backtrace, list) else []
    return "\n".join([f.error, f.exception, f.queue, *map(str, lines), dumps(f.attributes)])


def _failure(index: int, raw: bytes) -> Failure:
    try:
        data = read_json(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        data = {"error": "unreadable failure entry", "raw": raw.decode("utf-8", "replace")}
    return Failure(index, raw, data)
