"""Deliveries: records newest first, searched by status, channel, recipient and time; one record.

Recipients are shown masked, as the records keep them. Searching for one posts the typed
address to :func:`search`, which answers with a redirect to a URL holding only its digest.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import quote, urlencode

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bus.web import dashboard_of
from bus.web.rendering import url_path
from switchboard.deliveries import Delivery
from switchboard.web.board import Board, board_of
from switchboard.web.search import CHANNELS, PER_PAGE, STATUSES, WINDOW_LABELS, DeliveryQuery


def row(request: Request, delivery: Delivery) -> dict[str, Any]:
    """A record for the table (no recipient digests), with the link to its page."""
    link = f"{request.url_for('sb_delivery').path}?{urlencode({'id': delivery.id})}"
    return {**delivery.to_json(), "href": link}


def deliveries_context(request: Request, board: Board, query: DeliveryQuery) -> dict[str, Any]:
    found = board.deliveries.search(
        status=query.status or None,
        channel=query.channel or None,
        recipient_digest=query.recipient or None,
        since=query.since_epoch(),
        limit=PER_PAGE + 1,  # one more, to know whether there is an older page
        offset=(query.page - 1) * PER_PAGE,
    )
    return {
        "title": "Deliveries",
        "search": query,
        "rows": [row(request, d) for d in found.deliveries[:PER_PAGE]],
        "cut_short": found.cut_short,
        "scan_limit": board.deliveries.scan_limit,
        "older": query.page + 1 if len(found.deliveries) > PER_PAGE else None,
        "newer": query.page - 1 if query.page > 1 else None,
        "first_shown": (query.page - 1) * PER_PAGE + 1,
        "statuses": STATUSES,
        "channels": CHANNELS,
        "windows": WINDOW_LABELS,
        "now": time.time(),
    }


def deliveries(request: Request) -> Response:
    query = DeliveryQuery.from_params(request.query_params)
    context = deliveries_context(request, board_of(request), query)
    return dashboard_of(request).render(request, "sb_deliveries.html", context, partial="sb_deliveries_live.html")


async def search(request: Request) -> Response:
    """The search form: the typed recipient becomes a digest before anything reaches a URL."""
    query = DeliveryQuery.from_form(await request.form())
    params = urlencode(query.params())
    target = str(request.url_for("sb_deliveries").path) + (f"?{params}" if params else "")
    return dashboard_of(request).redirect(request, target)


LABELS = {
    "bus_id": "Event",
    "created_at": "Created",
    "updated_at": "Updated",
    "request_id": "Request id",
    "provider_message_id": "Provider message id",
}


def facts(request: Request, record: dict[str, Any]) -> list[dict[str, Any]]:
    """A record's fields as the page lists them: names in words, the event's trace and the
    outbox message (dev mode) linked."""
    out = []
    for key, value in record.items():
        if key == "id":
            continue
        href = None
        if key == "bus_id" and value:
            href = url_path(request, "event_trace", bus_id=str(value))
        elif key == "provider_message_id" and value and record.get("provider") == "outbox":
            channel = urlencode({"channel": str(record.get("channel", ""))})
            href = f"{request.url_for('sb_outbox').path}?{channel}#{quote(str(value), safe='')}"
        label = LABELS.get(key, key.replace("_", " ").capitalize())
        out.append({"label": label, "value": value, "href": href, "time": key in ("created_at", "updated_at")})
    return out


async def delivery(request: Request) -> Response:
    board = board_of(request)
    wanted = request.query_params.get("id", "")
    record = await run_in_threadpool(board.deliveries.get, wanted) if wanted else None
    if record is None:
        raise HTTPException(404, "No such delivery record (expired after the retention period?).")
    timeline = await run_in_threadpool(board.deliveries.timeline, record.id)
    data = record.to_json()
    context = {
        "title": f"Delivery {record.id}",
        "record": data,
        "facts": facts(request, data),
        "status": record.status,
        "timeline": timeline,
    }
    return dashboard_of(request).render(request, "sb_delivery.html", context)


ROUTES = [
    Route("/switchboard/deliveries", deliveries, name="sb_deliveries"),
    Route("/switchboard/deliveries/search", search, methods=["POST"], name="sb_deliveries_search"),
    Route("/switchboard/deliveries/record", delivery, name="sb_delivery"),
]
