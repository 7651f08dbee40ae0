"""Serving the dashboard with uvicorn (what ``bus web`` runs)."""

from __future__ import annotations

import logging

from bus.core import Bus
from bus.web.settings import WebSettings, check_bind

log = logging.getLogger("bus.web")


def serve(bus: Bus, settings: WebSettings) -> None:
    """Run until interrupted; refuses a non-loopback bind without authentication."""
    check_bind(settings)
    import uvicorn

    from bus.web.app import create_app

    app = create_app(bus, settings)
    log.warning("dashboard on http://%s:%d/", settings.host, settings.port)
    uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", server_header=False)
