"""Finding failures: a filter, pages of matches, and counts by exception, app and queue.

Without a filter a page is one LRANGE. With one, the list is scanned in chunks (newest
first) keeping only the page being shown, up to ``SCAN_LIMIT`` entries: never the whole list
in memory, whatever its length.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from bus.pipeline.envelope import dumps
from bus.stores.failures import Failure, Failures

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


def matching(failures: Failures, flt: FailureFilter, *, limit: int = SCAN_LIMIT) -> Iterator[Failure]:
    """Every entry matching ``flt``, oldest first (what the CLI lists and acts on)."""
    return (f for f in scan(failures, newest_first=False, limit=limit) if flt.matches(f))


def page(failures: Failures, flt: FailureFilter, offset: int, count: int, *, newest_first: bool = True) -> FailurePage:
    """``count`` entries from ``offset`` in display order, filtered."""
    total = failures.count()
    offset = min(max(offset, 0), total)
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


def _haystack(f: Failure) -> str:
    """What a text search looks in: message, exception, queue, backtrace and the event, decoded."""
    backtrace = f.data.get("backtrace")
    lines = backtrace if isinstance(backtrace, list) else []
    return "\n".join([f.error, f.exception, f.queue, *map(str, lines), dumps(f.attributes)])
