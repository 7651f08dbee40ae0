"""Searching the event log: the Events page's feed, paged by stream id and never read whole,
and finding one event's entry for its trace."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bus.backend.connection import as_text
from bus.logger.stream import LoggedEvent, parse_entry
from bus.stores.traces import Step

UINT64 = 2**64
_STREAM_ID = re.compile(r"([0-9]{1,20})-([0-9]{1,20})")
PER_PAGE = 50
CHUNK = 500
MAX_SCAN = 10_000
"""Entries one request reads at most: a search that finds too few pages on from where it stopped."""
SINCE_CHOICES = (("10m", "last 10 min"), ("1h", "last hour"), ("6h", "last 6 hours"), ("1d", "last day"))
SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SINCE = re.compile(r"(\d{1,7})([smhd]?)")


@dataclass(frozen=True, slots=True)
class FeedQuery:
    """The search form (type, since, text in bus_id) and the page cursor (a stream id)."""

    event_type: str = ""
    text: str = ""
    since: str = ""
    since_seconds: float | None = None
    before: str | None = None
    after: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> FeedQuery:
        since = params.get("since", "").strip()
        match = _SINCE.fullmatch(since)
        seconds = float(match.group(1)) * SINCE_UNITS[match.group(2) or "s"] if match else None
        before, after = (params.get(k, "") for k in ("before", "after"))
        return cls(
            event_type=params.get("type", "").strip(),
            text=params.get("q", "").strip(),
            since=since,
            since_seconds=seconds,
            before=parse_stream_id(before),
            after=parse_stream_id(after) if not parse_stream_id(before) else None,
        )

    @property
    def active(self) -> bool:
        return bool(self.event_type or self.text or self.since_seconds)

    @property
    def since_invalid(self) -> bool:
        return bool(self.since) and self.since_seconds is None

    def floor(self, now: float) -> str:
        """The oldest stream id the search reaches."""
        return f"{max(0, int((now - self.since_seconds) * 1000))}-0" if self.since_seconds else "-"

    def wants(self, fields: dict[Any, Any]) -> bool:
        """Whether an entry matches, from its indexed fields alone (no JSON parsing)."""
        if self.event_type and as_text(fields.get(b"type") or b"") != self.event_type:
            return False
        return not self.text or self.text.lower() in as_text(fields.get(b"bus_id") or b"").lower()


@dataclass(frozen=True, slots=True)
class FeedPage:
    events: list[LoggedEvent]
    """Newest first."""
    older: str | None
    """``before=`` for the next page back, if there may be one."""
    newer: str | None
    """``after=`` for the page forward, if there is one."""
    scanned: int
    cut_short: bool
    """The search stopped at :data:`MAX_SCAN` entries: ``older`` continues it."""


def read_feed(redis: Any, key: str, query: FeedQuery, *, now: float, per_page: int = PER_PAGE) -> FeedPage:
    """One page of matching entries, newest first: back from ``before`` (or the newest), or
    forward from ``after``; one more than a page is looked for, to know whether another follows."""
    floor = query.floor(now)
    if query.after:
        bottom = floor if floor != "-" and _id_key(floor) > _id_key(query.after) else f"({query.after}"
        found, scanned, cursor, done = _scan(
            functools.partial(_oldest_first, redis, key), bottom, query.wants, per_page + 1
        )
        shown = list(reversed(found[:per_page]))
        cut_short = not done and len(found) <= per_page
        newer = shown[0].entry_id if len(found) > per_page else cursor[1:] if cut_short else None
        return FeedPage(shown, shown[-1].entry_id if shown else query.after, newer, scanned, cut_short)
    top = f"({query.before}" if query.before else "+"
    found, scanned, cursor, done = _scan(
        functools.partial(_newest_first, redis, key, floor=floor), top, query.wants, per_page + 1
    )
    shown = found[:per_page]
    cut_short = not done and len(found) <= per_page
    older = shown[-1].entry_id if len(found) > per_page else cursor[1:] if cut_short else None
    return FeedPage(shown, older, shown[0].entry_id if query.before and shown else None, scanned, cut_short)


def _scan(
    read: Callable[[str], list[Any]], cursor: str, wants: Callable[[dict[Any, Any]], bool], limit: int
) -> tuple[list[LoggedEvent], int, str, bool]:
    """Matching entries in ``read``'s direction from ``cursor``, until ``limit`` are found or
    :data:`MAX_SCAN` entries are read; with how many were read, the exclusive cursor after the
    last one, and whether the stream ran out."""
    found: list[LoggedEvent] = []
    scanned = 0
    while len(found) < limit and scanned < MAX_SCAN:
        page = read(cursor)
        for entry_id, fields in page:
            scanned += 1
            cursor = f"({as_text(entry_id)}"
            if wants(fields):
                found.append(parse_entry(entry_id, fields))
                if len(found) >= limit:
                    break
        if len(page) < CHUNK:
            return found, scanned, cursor, True
    return found, scanned, cursor, False


def _id_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


def find_logged(redis: Any, key: str, bus_id: str, steps: list[Step]) -> LoggedEvent | None:
    """The event as the logger recorded it: searched from when it was published (the trace
    says, else the ``bus_id``'s epoch prefix), else among the newest entries; at most
    :data:`MAX_SCAN` entries either way."""
    published = next((s.at for s in steps if s.data.get("step") == "published" and s.at > 0), None)
    prefix = bus_id.partition("-")[0]
    if published is None and prefix.isascii() and prefix.isdigit() and len(prefix) <= 12:
        published = float(prefix)
    if published is None:
        read = functools.partial(_newest_first, redis, key)
        cursor = "+"
    else:
        read = functools.partial(_oldest_first, redis, key)
        cursor = f"{max(0, int(published - 60)) * 1000}-0"  # a minute's leeway for clock skew
    found, *_ = _scan(read, cursor, lambda fields: as_text(fields.get(b"bus_id") or b"") == bus_id, 1)
    return found[0] if found else None


def _newest_first(redis: Any, key: str, cursor: str, *, floor: str = "-") -> list[Any]:
    return list(redis.xrevrange(key, max=cursor, min=floor, count=CHUNK))


def _oldest_first(redis: Any, key: str, cursor: str) -> list[Any]:
    return list(redis.xrange(key, min=cursor, max="+", count=CHUNK))


def parse_stream_id(text: object) -> str | None:
    """A Redis stream id ``<ms>-<seq>`` (each part a 64-bit unsigned number), or None."""
    match = _STREAM_ID.fullmatch(text) if isinstance(text, str) else None
    if match is None or int(match.group(1)) >= UINT64 or int(match.group(2)) >= UINT64:
        return None
    return text if isinstance(text, str) else None
