"""``/metrics`` for Prometheus and ``/healthz`` for load balancers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bus.backend.connection import TRANSIENT_ERRORS
from bus.errors import BusError
from bus.stores.metrics import totals
from bus.web import metrics
from bus.web.dashboard import dashboard_of

DOWN: tuple[type[Exception], ...] = (*TRANSIENT_ERRORS, BusError)


def prometheus(request: Request) -> Response:
    """The bus's metrics, then those of packages that added theirs (:func:`metrics.add_collector`)."""
    dash = dashboard_of(request)
    collectors = [
        metrics.BusCollector(dash.snapshot(), totals(dash.redis, dash.bus.keys)),
        *(factory(request) for factory in metrics.extra_collectors(request.app)),
    ]
    body, content_type = metrics.exposition(request.headers.get("accept", ""), collectors)
    return Response(body, media_type=content_type)


def healthz(request: Request) -> Response:
    """200 when Redis answers, 503 when it does not (without saying where it is)."""
    try:
        dashboard_of(request).redis.ping()
    except DOWN:
        return JSONResponse({"status": "unavailable", "redis": False}, status_code=503)
    return JSONResponse({"status": "ok", "redis": True})


ROUTES = [
    Route("/metrics", prometheus, name="metrics"),
    Route("/healthz", healthz, name="healthz"),
]
