"""Serving the dashboard with uvicorn (what ``bus web`` and ``switchboard web`` run)."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from bus.core import Bus
from bus.web.settings import WebSettings, check_bind

if TYPE_CHECKING:
    import uvicorn
    from starlette.types import ASGIApp

log = logging.getLogger("bus.web")


def serve(bus: Bus, settings: WebSettings) -> None:
    """Run until interrupted; refuses a non-loopback bind without authentication."""
    check_bind(settings)
    from bus.web.app import create_app

    log.warning("dashboard on http://%s:%d/", settings.host, settings.port)
    serve_app(create_app(bus, settings), settings)


def serve_app(app: ASGIApp, settings: WebSettings) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, settings))
    server.run()
    if not server.started:  # startup failed; uvicorn logged why
        raise SystemExit(3)


def uvicorn_config(app: ASGIApp, settings: WebSettings, **options: Any) -> uvicorn.Config:
    """uvicorn set up for the dashboard (``options`` as for ``uvicorn.Config``, for tests).

    ``X-Forwarded-For``/``-Proto`` are believed only from ``web.trusted_proxies``: uvicorn's
    default trusts them from 127.0.0.1, which would let anyone tunnelled in or behind a
    pass-through proxy pick the client address the sign-in throttle counts against.
    """
    import uvicorn

    trusted = list(settings.trusted_proxies)
    defaults: dict[str, Any] = {
        "host": settings.host,
        "port": settings.port,
        "log_level": "info",
        "server_header": False,
        "proxy_headers": bool(trusted),
        "forwarded_allow_ips": trusted or None,
    }
    return uvicorn.Config(app, **{**defaults, **options})
