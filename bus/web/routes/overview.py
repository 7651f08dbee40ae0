"""Overview: queues, workers, counters, what looks stuck, and the last hour's chart."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bus.web.chart import chart
from bus.web.dashboard import dashboard_of


def overview(request: Request) -> Response:
    dash = dashboard_of(request)
    snap = dash.snapshot()
    context = {"title": "Overview", "snap": snap, "counters": snap.counters, "chart": chart(snap.series)}
    return dash.render(request, "overview.html", context, partial="overview_live.html")


def overview_json(request: Request) -> Response:
    return JSONResponse(dashboard_of(request).snapshot().to_json())


ROUTES = [
    Route("/", overview, name="overview"),
    Route("/api/overview", overview_json, name="api_overview"),
]
