"""Events: the feed ``bus logger`` records (searched and paged by stream id, never read whole),
the rates panel, and what happened to one event (its trace, from the workers).
Also ``/metrics``: the snapshot's series plus the event counts and latency histograms."""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.backend.connection import as_text
from bus.logger.stream import LoggedEvent, parse_entry
from bus.stores.traces import Step, gap_in, read_trace, why_untraced
from bus.web import metrics
from bus.web.dashboard import Dashboard, dashboard_of
from bus.web.rendering import url_path

PER_PAGE = 50
CHUNK = 500
MAX_SCAN = 10_000
"""Entries one request reads at most: a search that finds too few pages on from where it stopped."""
SINCE_CHOICES = (("10m", "last 10 min"), ("1h", "last hour"), ("6h", "last 6 hours"), ("1d", "last day"))
SINCE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SINCE = re.compile(r"(\d{1,7})([smhd]?)")
_STREAM_ID = re.compile(r"\d{1,20}-\d{1,20}")


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
            before=before if _STREAM_ID.fullmatch(before) else None,
            after=after if _STREAM_ID.fullmatch(after) and not before else None,
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


def trace_path(request: Request, bus_id: str) -> str:
    """The trace view's path; any character of a hostile ``bus_id`` is percent-encoded."""
    return url_path(request, "event_trace", bus_id=bus_id)


def events_context(dash: Dashboard, request: Request) -> dict[str, Any]:
    now = time.time()
    query = FeedQuery.from_params(request.query_params)
    key = dash.bus.keys.event_log
    feed = read_feed(dash.redis, key, query, now=now)
    minutes = metrics.window_of(request.query_params)
    queue_apps = {s.queue_name: s.app_key for s in dash.bus.registry.load()}
    rates = metrics.rates(dash.redis, dash.bus.keys, queue_apps, now=now, minutes=minutes)
    rows = [
        {
            "e": e,
            "href": trace_path(request, e.bus_id) if e.bus_id else None,
            "summary": json.dumps(
                {k: v for k, v in e.event.items() if not k.startswith("bus_")}, ensure_ascii=False, default=str
            ),
        }
        for e in feed.events
    ]
    return {
        "title": "Events",
        "search": query,
        "feed": feed,
        "rows": rows,
        "logged": int(dash.redis.xlen(key)),
        "rates": rates,
        "windows": metrics.RATE_WINDOWS,
        "since_choices": SINCE_CHOICES,
    }


def events(request: Request) -> Response:
    dash = dashboard_of(request)
    return dash.render(request, "events.html", events_context(dash, request), partial="events_live.html")


def trace(request: Request) -> Response:
    """What happened to one event: its steps (kept by workers for ``trace_ttl``) and, if the
    logger recorded it, its attributes."""
    dash = dashboard_of(request)
    bus_id = request.path_params["bus_id"]
    steps = read_trace(dash.redis, dash.bus.keys, bus_id)
    logged = find_logged(dash.redis, dash.bus.keys.event_log, bus_id, steps)
    start = next((s.at for s in steps if s.data.get("step") == "published"), steps[0].at if steps else 0.0)
    context = {
        "title": f"Event {bus_id}",
        "bus_id": bus_id,
        "rows": [{"s": s, "at": _utc_ms(s.at), "offset_ms": (s.at - start) * 1000} for s in steps],
        "to_the_second": not any("published_at_ms" in s.data for s in steps),
        "logged": logged,
        "gap": gap_in(steps, dash.bus.settings.observe, bus_id),
        "untraced": why_untraced(dash.bus.settings.observe, bus_id),
    }
    trace_id = next((s.data["trace_id"] for s in steps if _TRACE_ID.fullmatch(str(s.data.get("trace_id", "")))), None)
    context["otel_trace_id"] = trace_id
    template = dash.settings.otel_trace_url
    context["otel_trace_url"] = template.replace("{trace_id}", trace_id) if template and trace_id else None
    status = 200 if steps or logged else 404
    return dash.render(request, "trace.html", context, partial="trace_live.html", status_code=status)


_TRACE_ID = re.compile(r"[0-9a-f]{32}")


def _utc_ms(epoch: float) -> tuple[str, str]:
    """(``YYYY-MM-DD``, ``HH:MM:SS.mmm``) in UTC."""
    try:
        stamp = datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    except (OverflowError, OSError, ValueError):
        return "?", "?"
    day, _, clock = stamp[:-3].partition(" ")
    return day, clock


def find_logged(redis: Any, key: str, bus_id: str, steps: list[Step]) -> LoggedEvent | None:
    """The event as the logger recorded it: searched from when it was published (the trace
    says, else the ``bus_id``'s epoch prefix), else among the newest entries; at most
    :data:`MAX_SCAN` entries either way."""
    published = next((s.at for s in steps if s.data.get("step") == "published" and s.at > 0), None)
    prefix = bus_id.partition("-")[0]
    if published is None and prefix.isdigit() and len(prefix) <= 12:
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


ROUTES = [
    Route("/events", events, name="events"),
    Route("/events/trace/{bus_id:path}", trace, name="event_trace"),
]
