"""The switchboard's routes, one module per page group, all under ``/switchboard``."""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles

from switchboard.web.routes import channels, deliveries, frames, outbox, preferences, providers, suppressions, templates

STATIC = Path(__file__).parent.parent / "static"


def switchboard_routes() -> list[BaseRoute]:
    return [
        *channels.ROUTES,
        *templates.ROUTES,
        *deliveries.ROUTES,
        *outbox.ROUTES,
        *suppressions.ROUTES,
        *preferences.ROUTES,
        *providers.ROUTES,
        *frames.ROUTES,
        Mount("/switchboard/static", app=StaticFiles(directory=STATIC), name="switchboard_static"),
    ]
