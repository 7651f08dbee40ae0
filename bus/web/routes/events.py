"""Events: the feed ``bus logger`` records (searched and paged by stream id, never read whole),
the rates panel, and what happened to one event (its trace, from the workers).
Also ``/metrics``: the snapshot's series plus the event counts and latency histograms."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.logger.feed import SINCE_CHOICES, FeedQuery, find_logged, read_feed
from bus.logger.stream import EventLog
from bus.stores.traces import gap_in, read_trace, why_untraced
from bus.web import metrics
from bus.web.dashboard import Dashboard, dashboard_of
from bus.web.names import isolated
from bus.web.rendering import url_path


def trace_path(request: Request, bus_id: str) -> str:
    """The trace view's path; any character of a hostile ``bus_id`` is percent-encoded."""
    return url_path(request, "event_trace", bus_id=bus_id)


def events_context(dash: Dashboard, request: Request) -> dict[str, Any]:
    now = time.time()
    query = FeedQuery.from_params(request.query_params)
    event_log = EventLog(dash.redis, dash.bus.keys, max_length=0)
    feed = read_feed(dash.redis, event_log.key, query, now=now)
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
        "logged": event_log.length(),
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
        "title": f"Event {isolated(bus_id)}",
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


ROUTES = [
    Route("/events", events, name="events"),
    Route("/events/trace/{bus_id:path}", trace, name="event_trace"),
]
